package router_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xdscore "github.com/cncf/xds/go/xds/core/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/xds"
)

// TestCompileGolden compiles every route configuration xds.Build and xds.BuildProxyless make
// of the xds golden cases: everything Strait emits must be honored.
func TestCompileGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(testdataDir, "*.ir.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases (%v)", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".ir.yaml")
		t.Run(name, func(t *testing.T) {
			p := loadProxy(t, name)
			res, err := xds.Build(p)
			if err != nil {
				t.Fatal(err)
			}
			proxyless, err := xds.BuildProxyless(p, res)
			if err != nil {
				t.Fatal(err)
			}
			known := []string{"strait/invalid-backend"}
			for _, c := range res.Clusters {
				known = append(known, c.GetName())
			}
			for _, rc := range slices.Concat(res.Routes, proxyless.Routes) {
				table := mustCompile(t, rc)
				if table.Name != rc.GetName() || table.ValidateClusters {
					t.Errorf("table %q: name %q, validate clusters %v", rc.GetName(), table.Name, table.ValidateClusters)
				}
				for _, c := range table.Clusters() {
					if !slices.Contains(known, c) {
						t.Errorf("table %q names unknown cluster %q", rc.GetName(), c)
					}
				}
			}
		})
	}
}

// TestCompileDefaults checks what a route configuration leaves unset.
func TestCompileDefaults(t *testing.T) {
	table := mustCompile(t, baseConfig())
	rt, _ := table.Match(newRequest("GET", "example.com", "/"))
	if rt == nil {
		t.Fatal("no route")
	}
	if rt.Timeout != 15*time.Second {
		t.Errorf("timeout = %v, want Envoy's 15s default", rt.Timeout)
	}
	if rt.ClusterNotFoundResponseCode != 503 {
		t.Errorf("cluster not found code = %d, want 503", rt.ClusterNotFoundResponseCode)
	}
	if rt.Retry != nil || rt.CORS != nil || rt.Redirect != nil || rt.DirectResponse != nil {
		t.Errorf("unexpected policies: %+v", rt)
	}
	if got := rt.PickCluster(12345); got == nil || got.Name != "c" || got.Weight != 1 {
		t.Errorf("PickCluster = %+v", got)
	}
	if rt.VirtualHost != "vh" {
		t.Errorf("virtual host = %q", rt.VirtualHost)
	}
	if got := table.Clusters(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("Clusters = %v", got)
	}
}

// baseConfig is a valid configuration that the error cases break one field at a time.
func baseConfig() *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: "rc",
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "vh",
			Domains: []string{"example.com"},
			Routes: []*routev3.Route{{
				Name:  "r",
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"},
				}},
			}},
		}},
	}
}

func firstRoute(rc *routev3.RouteConfiguration) *routev3.Route { return rc.VirtualHosts[0].Routes[0] }

func firstAction(rc *routev3.RouteConfiguration) *routev3.RouteAction {
	return firstRoute(rc).GetRoute()
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func exact(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func headerOption(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}
}

// TestCompileErrors checks that what the proxy cannot honor is refused with an error that
// names where it is.
func TestCompileErrors(t *testing.T) {
	const at = `route configuration "rc": virtual host "vh": route "r": `
	tests := []struct {
		name   string
		mutate func(t *testing.T, rc *routev3.RouteConfiguration)
		want   string
	}{{
		name: "unknown per-filter config",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).TypedPerFilterConfig = map[string]*anypb.Any{
				"envoy.filters.http.ext_authz": mustAny(t, &corsv3.CorsPolicy{}),
			}
		},
		want: at + `typed_per_filter_config["envoy.filters.http.ext_authz"]: filter is not supported`,
	}, {
		name: "CORS config of the wrong type",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).TypedPerFilterConfig = map[string]*anypb.Any{wellknown.CORS: mustAny(t, &corsv3.Cors{})}
		},
		want: at + `typed_per_filter_config["envoy.filters.http.cors"]: want a envoy.extensions.filters.http.cors.v3.CorsPolicy`,
	}, {
		name: "CORS runtime fraction",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).TypedPerFilterConfig = map[string]*anypb.Any{wellknown.CORS: mustAny(t, &corsv3.CorsPolicy{
				FilterEnabled: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 50}},
			})}
		},
		want: at + `typed_per_filter_config["envoy.filters.http.cors"]: filter_enabled is not supported`,
	}, {
		name: "virtual host per-filter config",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.lua": mustAny(t, &corsv3.Cors{})}
		},
		want: `virtual host "vh": typed_per_filter_config["envoy.filters.http.lua"]: filter is not supported`,
	}, {
		name: "unsupported action",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Action = &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}}
		},
		want: at + "non_forwarding_action is not supported",
	}, {
		name: "cluster from a header",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).ClusterSpecifier = &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-cluster"}
		},
		want: at + "route: cluster_header is not supported",
	}, {
		name: "idle timeout",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).IdleTimeout = durationpb.New(time.Second)
		},
		want: at + "route: idle_timeout is not supported",
	}, {
		name: "unknown retry condition",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).RetryPolicy = &routev3.RetryPolicy{RetryOn: "reset,retriable-headers"}
		},
		want: at + `route: retry_policy: retry_on: condition "retriable-headers" is not supported`,
	}, {
		name: "retry host predicate",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).RetryPolicy = &routev3.RetryPolicy{HostSelectionRetryMaxAttempts: 3}
		},
		want: at + "route: retry_policy: host_selection_retry_max_attempts is not supported",
	}, {
		name: "back-off max below base",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
				BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond),
			}}
		},
		want: at + "route: retry_policy: retry_back_off: max_interval is less than base_interval",
	}, {
		name: "range header match",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Match.Headers = []*routev3.HeaderMatcher{{
				Name:                 "x-n",
				HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 1, End: 2}},
			}}
		},
		want: at + `match: headers[0] ("x-n"): range_match is not supported`,
	}, {
		name: "unknown pseudo-header",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Match.Headers = []*routev3.HeaderMatcher{{
				Name: ":protocol", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true},
			}}
		},
		want: at + `match: headers[0] (":protocol"): pseudo-header ":protocol" is not supported`,
	}, {
		name: "gRPC match",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Match.Grpc = &routev3.RouteMatch_GrpcRouteMatchOptions{}
		},
		want: at + "match: grpc is not supported",
	}, {
		name: "invalid path regex",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "a)|(b"}}
		},
		want: at + "match: safe_regex: error parsing regexp",
	}, {
		name: "custom string matcher",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Match.QueryParameters = []*routev3.QueryParameterMatcher{{
				Name: "q",
				QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Custom{Custom: &xdscore.TypedExtensionConfig{
						Name: "x", TypedConfig: mustAny(t, &corsv3.Cors{}),
					}},
				}},
			}}
		},
		want: at + `match: query_parameters[0] ("q"): string_match: custom is not supported`,
	}, {
		name: "substitution names a missing group",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
				Pattern: &matcherv3.RegexMatcher{Regex: "^/(a)"}, Substitution: `/\2`,
			}
		},
		want: at + `route: regex_rewrite: substitution: \2 refers to a group the pattern does not have`,
	}, {
		name: "header formatter",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).RequestHeadersToAdd = []*corev3.HeaderValueOption{headerOption("x-ip", "%DOWNSTREAM_REMOTE_ADDRESS%")}
		},
		want: at + `request_headers_to_add[0]: header "x-ip": substitution formatter in "%DOWNSTREAM_REMOTE_ADDRESS%" is not supported`,
	}, {
		name: "host header modified",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).RequestHeadersToRemove = []string{"Host"}
		},
		want: at + `request_headers_to_remove[0]: header "Host" cannot be modified`,
	}, {
		name: "append and append_action",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			o := headerOption("x-a", "1")
			o.Append = wrapperspb.Bool(true) //nolint:staticcheck // tests that the deprecated append conflicts with append_action
			o.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS
			rc.ResponseHeadersToAdd = []*corev3.HeaderValueOption{o}
		},
		want: `route configuration "rc": response_headers_to_add[0]: append and append_action are both set`,
	}, {
		name: "duplicate domain",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
				Name: "other", Domains: []string{"EXAMPLE.com"}, Routes: rc.VirtualHosts[0].Routes,
			})
		},
		want: `virtual host "other": domains[0] ("EXAMPLE.com"): domain also belongs to virtual host "vh"`,
	}, {
		name: "duplicate virtual host",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
				Name: "vh", Domains: []string{"other.example.com"}, Routes: rc.VirtualHosts[0].Routes,
			})
		},
		want: `virtual_hosts[1]: duplicate name "vh"`,
	}, {
		name: "wildcard inside a domain",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Domains = []string{"api.*.example.com"}
		},
		want: `domains[0] ("api.*.example.com"): a wildcard must start or end the domain`,
	}, {
		name: "require TLS",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].RequireTls = routev3.VirtualHost_ALL
		},
		want: `virtual host "vh": require_tls is not supported`,
	}, {
		name: "VHDS",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.Vhds = &routev3.Vhds{ConfigSource: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			}}
		},
		want: `route configuration "rc": vhds is not supported`,
	}, {
		name: "weights sum to zero",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(0)}},
			}}
		},
		want: at + "route: weighted_clusters: the weights sum to 0",
	}, {
		name: "per-cluster host rewrite",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{{
					Name: "a", Weight: wrapperspb.UInt32(1),
					HostRewriteSpecifier: &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: "x"},
				}},
			}}
		},
		want: at + `route: weighted_clusters: clusters[0] ("a"): host_rewrite_literal is not supported`,
	}, {
		name: "direct response too large",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: 200,
				Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: strings.Repeat("x", 4097)}},
			}}
		},
		want: at + "direct_response: body: 4097 bytes is more than max_direct_response_body_size_bytes (4096)",
	}, {
		name: "direct response from a file",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: 200,
				Body:   &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/passwd"}},
			}}
		},
		want: at + "direct_response: body: filename is not supported",
	}, {
		name: "redirect host with a port",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{HostRedirect: "example.org:8080"}}
		},
		want: at + `redirect: host_redirect: "example.org:8080" is not a host name`,
	}, {
		name: "mirror with a runtime key",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{
				Cluster: "m",
				RuntimeFraction: &corev3.RuntimeFractionalPercent{
					DefaultValue: &typev3.FractionalPercent{Numerator: 1}, RuntimeKey: "mirror.m",
				},
			}}
		},
		want: at + "route: request_mirror_policies[0]: runtime_fraction: runtime_key is not supported",
	}, {
		name: "hash on filter state",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstAction(rc).HashPolicy = []*routev3.RouteAction_HashPolicy{{
				PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{
					FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: "k"},
				},
			}}
		},
		want: at + "route: hash_policy[0]: filter_state is not supported",
	}, {
		name: "unnamed route",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			firstRoute(rc).Name = ""
			firstRoute(rc).Decorator = &routev3.Decorator{Operation: "op"}
		},
		want: `virtual host "vh": route "#0": decorator is not supported`,
	}, {
		name: "fields from a newer API",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			// Field 999, varint 1.
			firstAction(rc).ProtoReflect().SetUnknown([]byte{0xb8, 0x3e, 0x01})
		},
		want: at + "route: envoy.config.route.v3.RouteAction has fields this proxy does not know",
	}, {
		name: "invalid resource",
		mutate: func(t *testing.T, rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Domains = nil
		},
		want: `route configuration "rc": invalid RouteConfiguration.VirtualHosts[0]`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := baseConfig()
			tc.mutate(t, rc)
			table, err := router.Compile(rc)
			if err == nil {
				t.Fatalf("Compile succeeded (%v), want error containing %q", table, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tc.want)
			}
		})
	}
	if _, err := router.Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
}
