package xds_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// TestPolicyDefaultsAreTheDefaults checks that a BackendTrafficPolicy that spells out the
// API's defaults for outlier detection and the connect timeout builds the same cluster as no
// policy: the defaults documented for the API are the behavior of backends without one.
func TestPolicyDefaultsAreTheDefaults(t *testing.T) {
	parse := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	plain := &ir.Backend{Name: "c1/default/app/80", AppProtocol: ir.AppHTTP1}
	withDefaults := &ir.Backend{
		Name: "c1/default/app/80", AppProtocol: ir.AppHTTP1,
		OutlierDetection: &ir.OutlierDetection{
			Consecutive5xx:           straitv1alpha1.DefaultOutlierConsecutive5xx,
			ConsecutiveGatewayErrors: straitv1alpha1.DefaultOutlierConsecutiveGatewayErrors,
			Interval:                 parse(straitv1alpha1.DefaultOutlierInterval),
			BaseEjectionTime:         parse(straitv1alpha1.DefaultOutlierBaseEjectionTime),
			MaxEjectionPercent:       straitv1alpha1.DefaultOutlierMaxEjectionPercent,
		},
		ConnectTimeout: parse(straitv1alpha1.DefaultConnectTimeout),
		LoadBalancer:   &ir.LoadBalancer{Type: ir.LoadBalancerRoundRobin},
	}
	var clusters []any
	for _, be := range []*ir.Backend{plain, withDefaults} {
		res, err := xds.Build(&ir.Proxy{Node: "c1/default/gw", Cluster: "c1", Backends: []*ir.Backend{be}})
		if err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, res.Clusters[0])
	}
	if diff := cmp.Diff(clusters[0], clusters[1], protocmp.Transform()); diff != "" {
		t.Errorf("the API's defaults build another cluster than no policy (-none +defaults):\n%s", diff)
	}
}
