package localcluster

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	mcscrd "sigs.k8s.io/mcs-api/config/crd"
)

//go:generate bash ../../hack/localcluster/copy-crds.sh

// crds holds copies of Gateway API's CRDs (both channels) and Strait's, made by
// hack/localcluster/copy-crds.sh.
//
//go:embed crds
var crds embed.FS

// Gateway API release channels (Options.GatewayAPIChannel).
const (
	GatewayAPIStandard     = "standard"
	GatewayAPIExperimental = "experimental"
)

// BundleVersionAnnotation is the annotation with which Gateway API's CRDs name their release.
const BundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"

// The kinds found in the CRD manifests; anything else is an error, not a silent skip.
var manifestResources = map[schema.GroupVersionKind]schema.GroupVersionResource{
	{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}:                 {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"}:        {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicyBinding"}: {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"},
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Manifests returns the objects a local cluster installs: the Gateway API CRDs of the
// channel (with their safe-upgrades admission policy), the MCS API CRDs and Strait's CRDs.
func Manifests(channel string) ([]*unstructured.Unstructured, error) {
	if channel != GatewayAPIStandard && channel != GatewayAPIExperimental {
		return nil, fmt.Errorf("gateway API channel %q: want %q or %q", channel, GatewayAPIStandard, GatewayAPIExperimental)
	}
	var objs []*unstructured.Unstructured
	for _, dir := range []string{path.Join("crds", "gateway-api", channel), path.Join("crds", "strait")} {
		entries, err := fs.ReadDir(crds, dir)
		if err != nil {
			return nil, fmt.Errorf("embedded CRDs: %w", err)
		}
		for _, e := range entries {
			name := path.Join(dir, e.Name())
			data, err := fs.ReadFile(crds, name)
			if err != nil {
				return nil, fmt.Errorf("embedded CRDs: %w", err)
			}
			fileObjs, err := decodeManifests(name, data)
			if err != nil {
				return nil, err
			}
			objs = append(objs, fileObjs...)
		}
	}
	for name, data := range map[string][]byte{"mcs-api serviceexports": mcscrd.ServiceExportCRD, "mcs-api serviceimports": mcscrd.ServiceImportCRD} {
		fileObjs, err := decodeManifests(name, data)
		if err != nil {
			return nil, err
		}
		objs = append(objs, fileObjs...)
	}
	return objs, nil
}

func decodeManifests(name string, data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document between two "---"
		}
		if _, ok := manifestResources[obj.GroupVersionKind()]; !ok {
			return nil, fmt.Errorf("%s: unexpected kind %s", name, obj.GroupVersionKind())
		}
		objs = append(objs, obj)
	}
}

// installManifests applies objs with server-side apply and waits until every CRD among
// them is Established.
func installManifests(ctx context.Context, client dynamic.Interface, objs []*unstructured.Unstructured) error {
	// In parallel: each CRD makes kube-apiserver rebuild its OpenAPI document, and
	// concurrent ones share the rebuilds.
	g, gctx := errgroup.WithContext(ctx)
	want := map[string]bool{}
	for _, obj := range objs {
		gvr := manifestResources[obj.GroupVersionKind()]
		if gvr == crdResource {
			want[obj.GetName()] = false
		}
		g.Go(func() error {
			if _, err := client.Resource(gvr).Apply(gctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "localcluster", Force: true}); err != nil {
				return fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := client.Resource(crdResource).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, crd := range list.Items {
				if _, ok := want[crd.GetName()]; ok {
					want[crd.GetName()] = isEstablished(&crd)
				}
			}
		}
		var pending []string
		for name, ok := range want {
			if !ok {
				pending = append(pending, name)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRDs not Established: %v: %w", pending, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func isEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
