package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

func newTranslateCommand() *cobra.Command {
	var configPath, output string
	cmd := &cobra.Command{
		Use:   "translate --config FILE [-o yaml|json]",
		Short: "Print the xDS resources and statuses the control plane would produce, offline",
		Long: `translate reads a Strait config file and the manifests of every cluster it lists,
translates them as the control plane would, and prints one entry per proxy node
("<cluster>/<namespace>/<gateway>") with its Envoy listeners, routes, clusters and
endpoints in protojson, followed by the status of every object Strait processed.
Invalid input exits with status 1 and one line per problem, as file:line: what.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "yaml" && output != "json" {
				return fmt.Errorf("-o must be yaml or json, not %q", output)
			}
			in, err := loadInput(cmd.ErrOrStderr(), configPath)
			if err != nil {
				return err
			}
			return writeTranslation(cmd.OutOrStdout(), translator.Translate(in), output)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "strait.yaml", "Strait config file")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// loadInput reads a config file and its manifests once, printing warnings and every error to
// w. Errors are returned as an exitError, already reported.
func loadInput(w io.Writer, configPath string) (*translator.Input, error) {
	cfg, err := file.Load(configPath)
	if err != nil {
		fmt.Fprintln(w, err)
		return nil, exitError{code: 1}
	}
	in, warnings, err := file.LoadInput(cfg)
	for _, warn := range warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	if err != nil {
		fmt.Fprintln(w, err)
		return nil, exitError{code: 1}
	}
	return in, nil
}

// translation is the printed form of a translation.
type translation struct {
	Nodes    map[string]nodeResources `json:"nodes"`
	Statuses []translator.Status      `json:"statuses"`
}

// nodeResources are one proxy node's Envoy resources, each in protojson.
type nodeResources struct {
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Clusters  []json.RawMessage `json:"clusters"`
	Endpoints []json.RawMessage `json:"endpoints"`
	// Secrets are listed by name only: key material is never printed.
	Secrets []string `json:"secrets,omitempty"`
}

func writeTranslation(w io.Writer, out *translator.Output, format string) error {
	t := translation{Nodes: map[string]nodeResources{}, Statuses: out.Statuses}
	if t.Statuses == nil {
		t.Statuses = []translator.Status{}
	}
	for _, p := range out.Proxies {
		res, err := xds.Build(p)
		if err != nil {
			return fmt.Errorf("node %s: %w", p.Node, err)
		}
		if t.Nodes[p.Node], err = newNodeResources(res); err != nil {
			return fmt.Errorf("node %s: %w", p.Node, err)
		}
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	_, err = w.Write(data)
	return err
}

// newNodeResources renders a node's resources in protojson, secrets by name only.
func newNodeResources(res *xds.Resources) (nodeResources, error) {
	var n nodeResources
	for _, group := range []struct {
		dst *[]json.RawMessage
		src []proto.Message
	}{
		{&n.Listeners, protoMessages(res.Listeners)},
		{&n.Routes, protoMessages(res.Routes)},
		{&n.Clusters, protoMessages(res.Clusters)},
		{&n.Endpoints, protoMessages(res.Endpoints)},
	} {
		*group.dst = []json.RawMessage{}
		for _, m := range group.src {
			data, err := protojson.Marshal(m)
			if err != nil {
				return n, err
			}
			*group.dst = append(*group.dst, data)
		}
	}
	for _, s := range res.Secrets {
		n.Secrets = append(n.Secrets, s.GetName())
	}
	return n, nil
}

func protoMessages[M proto.Message](in []M) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
