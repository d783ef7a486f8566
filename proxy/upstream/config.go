package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Envoy's defaults.
const (
	defaultConnectTimeout   = 5 * time.Second
	defaultPanicThreshold   = 50
	defaultOverprovisioning = 140
	defaultRingMin          = 1024
	defaultRingMax          = 8 * 1024 * 1024
	defaultChoiceCount      = 2
)

// clusterSpec is a Cluster with its endpoints, checked and compiled. It is immutable.
type clusterSpec struct {
	name string
	// lbName is the policy's name in the Cluster proto, for stats.
	lbName string
	lb     policy
	// panicThreshold is a percent of available endpoints; 0 disables panic.
	panicThreshold   uint32
	localityWeighted bool
	overprovisioning uint32
	// weightedPriorityHealth computes priority health from endpoint weights, not counts.
	weightedPriorityHealth bool
	endpoints              []endpointSpec
	transport              transportOptions
	// tls originates TLS; nil for plaintext.
	tls     *tls.Config
	limits  limits
	health  *healthSpec  // nil: no active health checks
	outlier *outlierSpec // nil: no outlier detection
}

// compileCluster checks that the proxy can honor c and its endpoints cla (nil when the
// control plane has sent none yet: no endpoints) and compiles them. secrets are the SDS
// secrets by name.
func compileCluster(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment, secrets map[string]*tlsv3.Secret) (*clusterSpec, error) {
	if err := onlyFields(c, "name", "type", "eds_cluster_config", "connect_timeout", "lb_policy",
		"load_assignment", "health_checks", "circuit_breakers", "typed_extension_protocol_options",
		"outlier_detection", "ring_hash_lb_config", "maglev_lb_config", "least_request_lb_config",
		"round_robin_lb_config", "common_lb_config", "transport_socket"); err != nil {
		return nil, err
	}
	s := &clusterSpec{name: c.GetName(), lbName: c.GetLbPolicy().String()}
	switch c.GetType() {
	case clusterv3.Cluster_EDS:
		if c.GetEdsClusterConfig() == nil {
			return nil, errors.New("EDS cluster without eds_cluster_config")
		}
	case clusterv3.Cluster_STATIC:
		cla = c.GetLoadAssignment()
	default:
		return nil, fmt.Errorf("discovery type %s is not supported (only EDS and STATIC)", c.GetType())
	}
	var err error
	if s.lb, err = compilePolicy(c); err != nil {
		return nil, err
	}
	if err := compileCommonLB(s, c.GetCommonLbConfig()); err != nil {
		return nil, fmt.Errorf("common_lb_config: %w", err)
	}
	if err := compileAssignment(s, cla); err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	if _, ok := s.lb.(maglev); ok && len(s.endpoints) > maxMaglevEndpoints {
		return nil, fmt.Errorf("MAGLEV balances at most %d endpoints, got %d", maxMaglevEndpoints, len(s.endpoints))
	}
	if s.limits, err = compileLimits(c.GetCircuitBreakers()); err != nil {
		return nil, fmt.Errorf("circuit_breakers: %w", err)
	}
	if s.transport, s.tls, err = compileTransport(c, s.limits, secrets); err != nil {
		return nil, err
	}
	if s.health, err = compileHealthChecks(c.GetHealthChecks()); err != nil {
		return nil, fmt.Errorf("health_checks: %w", err)
	}
	if c.GetOutlierDetection() != nil {
		if s.outlier, err = compileOutlier(c.GetOutlierDetection()); err != nil {
			return nil, fmt.Errorf("outlier_detection: %w", err)
		}
	}
	return s, nil
}

// compilePolicy maps lb_policy and its config to a policy.
func compilePolicy(c *clusterv3.Cluster) (policy, error) {
	var p policy
	var want string // the lb_config member that goes with the policy
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		p, want = roundRobin{}, "round_robin_lb_config"
		if err := onlyFields(c.GetRoundRobinLbConfig()); err != nil {
			return nil, fmt.Errorf("round_robin_lb_config: %w", err)
		}
	case clusterv3.Cluster_RANDOM:
		p = random{}
	case clusterv3.Cluster_LEAST_REQUEST:
		lr := c.GetLeastRequestLbConfig()
		if err := onlyFields(lr, "choice_count"); err != nil {
			return nil, fmt.Errorf("least_request_lb_config: %w", err)
		}
		choices := defaultChoiceCount
		if lr.GetChoiceCount() != nil {
			choices = int(lr.GetChoiceCount().GetValue())
		}
		if choices < 2 {
			return nil, fmt.Errorf("least_request_lb_config: choice_count %d is below 2", choices)
		}
		p, want = leastRequest{choices: choices}, "least_request_lb_config"
	case clusterv3.Cluster_RING_HASH:
		rh := c.GetRingHashLbConfig()
		if err := onlyFields(rh, "minimum_ring_size", "maximum_ring_size", "hash_function"); err != nil {
			return nil, fmt.Errorf("ring_hash_lb_config: %w", err)
		}
		if rh.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return nil, fmt.Errorf("ring_hash_lb_config: hash function %s is not supported", rh.GetHashFunction())
		}
		r := ringHash{minSize: defaultRingMin, maxSize: defaultRingMax}
		if v := rh.GetMinimumRingSize(); v != nil {
			r.minSize = v.GetValue()
		}
		if v := rh.GetMaximumRingSize(); v != nil {
			r.maxSize = v.GetValue()
		}
		if r.minSize == 0 || r.minSize > r.maxSize || r.maxSize > defaultRingMax {
			return nil, fmt.Errorf("ring_hash_lb_config: ring size bounds [%d, %d] must satisfy 0 < min <= max <= %d", r.minSize, r.maxSize, defaultRingMax)
		}
		p, want = r, "ring_hash_lb_config"
	case clusterv3.Cluster_MAGLEV:
		m := maglev{size: defaultMaglevTableSize}
		if v := c.GetMaglevLbConfig().GetTableSize(); v != nil {
			m.size = v.GetValue()
		}
		if m.size > 5000011 || !new(big.Int).SetUint64(m.size).ProbablyPrime(0) {
			return nil, fmt.Errorf("maglev_lb_config: table size %d must be a prime up to 5000011", m.size)
		}
		p, want = m, "maglev_lb_config"
	default:
		return nil, fmt.Errorf("lb_policy %s is not supported", c.GetLbPolicy())
	}
	if cfg := c.ProtoReflect().WhichOneof(c.ProtoReflect().Descriptor().Oneofs().ByName("lb_config")); cfg != nil && string(cfg.Name()) != want {
		return nil, fmt.Errorf("%s does not apply to lb_policy %s", cfg.Name(), c.GetLbPolicy())
	}
	return p, nil
}

func compileCommonLB(s *clusterSpec, cl *clusterv3.Cluster_CommonLbConfig) error {
	if err := onlyFields(cl, "healthy_panic_threshold", "locality_weighted_lb_config"); err != nil {
		return err
	}
	s.panicThreshold = defaultPanicThreshold
	if t := cl.GetHealthyPanicThreshold(); t != nil {
		v := t.GetValue()
		if math.IsNaN(v) || v < 0 || v > 100 {
			return fmt.Errorf("healthy_panic_threshold %v is not a percentage", v)
		}
		s.panicThreshold = uint32(math.Round(v))
	}
	s.localityWeighted = cl.GetLocalityWeightedLbConfig() != nil
	return nil
}

// onlyFields fails, naming them, when m sets fields other than supported: a field the proxy
// does not know how to honor must not be silently ignored.
func onlyFields(m proto.Message, supported ...protoreflect.Name) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil
	}
	var unsupported []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(supported, fd.Name()) {
			unsupported = append(unsupported, string(fd.Name()))
		}
		return true
	})
	if len(unsupported) == 0 {
		return nil
	}
	slices.Sort(unsupported)
	return fmt.Errorf("%s: %s not supported", m.ProtoReflect().Descriptor().Name(), strings.Join(unsupported, ", "))
}

// duration converts a proto duration, def when unset; it must be positive.
func duration(d *durationpb.Duration, def time.Duration, name string) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	v := d.AsDuration()
	if v <= 0 {
		return 0, fmt.Errorf("%s must be positive", name)
	}
	return v, nil
}
