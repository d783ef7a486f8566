package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validConfig() *StraitConfig {
	c := &StraitConfig{Clusters: []ClusterConfig{
		{Name: "us", Region: "us-east", Labels: map[string]string{"residency": "us"}, Manifests: "clusters/us"},
		{Name: "eu-1", Manifests: "/abs/eu"},
	}}
	c.Default()
	return c
}

func TestDefault(t *testing.T) {
	c := &StraitConfig{Proxy: ProxyConfig{BindAddress: "0.0.0.0"}, XDS: ":18001"}
	c.Default()
	want := &StraitConfig{Proxy: ProxyConfig{BindAddress: "0.0.0.0"}, XDS: ":18001", Admin: DefaultAdminAddress}
	want.APIVersion, want.Kind = "strait.dev/v1alpha1", "StraitConfig"
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	c = &StraitConfig{}
	c.Default()
	if c.Proxy.BindAddress != DefaultBindAddress || c.XDS != DefaultXDSAddress {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*StraitConfig)
		want   []string
	}{{
		name:   "valid",
		change: func(*StraitConfig) {},
	}, {
		name: "addresses that are valid",
		change: func(c *StraitConfig) {
			c.Proxy.BindAddress, c.XDS, c.Admin = "::", "[::1]:0", "localhost:65535"
		},
	}, {
		name: "cluster names",
		change: func(c *StraitConfig) {
			c.Clusters = append(c.Clusters, ClusterConfig{Name: "us", Manifests: "x"}, ClusterConfig{Name: "Bad.Name", Manifests: "x"}, ClusterConfig{Manifests: "x"})
		},
		want: []string{
			`clusters[2].name: Duplicate value: "us"`,
			`clusters[3].name: Invalid value: "Bad.Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			`clusters[4].name: Required value: a DNS label`,
		},
	}, {
		name: "labels and manifests",
		change: func(c *StraitConfig) {
			c.Clusters[0].Labels = map[string]string{"ok": "has space"}
			c.Clusters[1].Manifests = ""
		},
		want: []string{
			`clusters[0].labels: Invalid value: "has space": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
			`clusters[1].manifests: Required value: a directory of YAML manifests, or a kubeconfig`,
		},
	}, {
		name: "a kubeconfig instead of manifests",
		change: func(c *StraitConfig) {
			c.Clusters[1].Manifests, c.Clusters[1].Kubeconfig = "", "eu.kubeconfig"
		},
	}, {
		name: "both manifests and a kubeconfig",
		change: func(c *StraitConfig) {
			c.Clusters[0].Kubeconfig = "us.kubeconfig"
		},
		want: []string{
			`clusters[0].kubeconfig: Forbidden: a cluster has manifests or a kubeconfig, not both`,
		},
	}, {
		name: "addresses",
		change: func(c *StraitConfig) {
			c.Proxy.BindAddress, c.XDS, c.Admin = "localhost", "127.0.0.1", "bad_host!:08"
		},
		want: []string{
			`proxy.bindAddress: Invalid value: "localhost": must be an IP address`,
			`xds: Invalid value: "127.0.0.1": must be host:port`,
			`admin: Invalid value: "bad_host!:08": host must be empty, an IP address or a DNS name`,
			`admin: Invalid value: "bad_host!:08": port must be a number from 0 to 65535`,
		},
	}, {
		name: "type meta and no clusters",
		change: func(c *StraitConfig) {
			c.APIVersion, c.Kind, c.Clusters = "strait.dev/v1", "Config", nil
		},
		want: []string{
			`apiVersion: Unsupported value: "strait.dev/v1": supported values: "strait.dev/v1alpha1"`,
			`kind: Unsupported value: "Config": supported values: "StraitConfig"`,
			`clusters: Required value: at least one cluster is required`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			var got []string
			for _, err := range c.Validate() {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
