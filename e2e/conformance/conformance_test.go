// Package conformance runs the Gateway API conformance suite (sigs.k8s.io/gateway-api/
// conformance, the version of the Gateway API CRDs) against Strait as it is deployed: one
// local cluster with the experimental channel's CRDs and a process kubelet that runs the
// suite's echo-basic pods, `strait controller` on that cluster with an address pool on
// loopback, and one `strait proxy` per Gateway. It needs root (the kubelet's network
// namespaces) and skips otherwise. See docs/conformance/README.md.
//
// It is a module of its own so that the suite's dependencies (controller-runtime, testify)
// never reach Strait's go.mod.
package conformance

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/apis/v1alpha2"
	"sigs.k8s.io/gateway-api/apis/v1alpha3"
	xv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	gwconformance "sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/flags"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/e2e/kubelet"
	"github.com/strait-gw/strait/e2e/localcluster"
	"github.com/strait-gw/strait/translator"
)

// The suite's own flags (-conformance-profiles, -run-test, -skip-tests, -supported-features,
// -version, ...) apply over the defaults below; these are the harness's.
var (
	coreOnly = flag.Bool("core-only", false,
		"claim only the profiles' core features instead of the ones Strait's GatewayClass advertises")
	reportDir = flag.String("report-dir", "",
		"write the suite's ConformanceReport here, one file per profile (<profile>.yaml)")
)

const (
	// clusterName is the cluster's name and the first part of every proxy's node id.
	clusterName = "conformance"
	// firstIndex numbers the cluster's bridge and pod CIDR (strait20, 10.244.20.0/24) apart
	// from the other e2e packages', which go test may run at the same time.
	firstIndex = 20
	// className is Strait's GatewayClass in the suite.
	className = "strait"
	// addressPool is where the controller gives each Gateway a loopback IP of its own.
	// usableAddress is a free IP of it for GatewayStaticAddresses; unusableAddress is
	// outside it.
	addressPool     = "127.20.0.0/16"
	usableAddress   = "127.20.255.250"
	unusableAddress = "192.0.2.1"
	// readyImage is the suite's coredns image: its pod only needs to be Ready (no test of the
	// profiles run here sends it traffic).
	readyImage = "registry.k8s.io/coredns/coredns"
)

func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process kubelet needs root for network namespaces")
	}
	ctx := t.Context()
	dir := t.TempDir()
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))

	if err := kubelet.Prepare(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// The controller and the proxies run the binary the echo pods run, which Prepare built.
	binary, err := kubelet.StraitBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fleet := localcluster.StartForTest(t, localcluster.Options{
		Clusters:          []string{clusterName},
		FirstIndex:        firstIndex,
		GatewayAPIChannel: localcluster.GatewayAPIExperimental,
		Addons:            []localcluster.Addon{kubelet.Addon(nil, readyImage)},
	})
	lc := fleet.Cluster(clusterName)
	gw := gwclient.NewForConfigOrDie(lc.Config)

	gc := &gwapiv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: className},
		Spec:       gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName},
	}
	if _, err := gw.GatewayV1().GatewayClasses().Create(ctx, gc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ports, err := localcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	xdsAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	controllerLog := filepath.Join(dir, "controller.log")
	controller, err := startProcess(binary, controllerLog, "controller",
		"--kubeconfig", clusterName+"="+lc.Kubeconfig, "--leader-elect=false",
		"--address-pool", addressPool, "--xds", xdsAddr, "--admin", "127.0.0.1:"+strconv.Itoa(ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = controller.Process.Kill()
		_ = controller.Wait()
		keepLogs(t, dir)
	})
	d := &deployer{binary: binary, xds: xdsAddr, cluster: clusterName, class: className, logDir: dir, gw: gw}
	deployCtx, stopDeployer := context.WithCancel(ctx)
	d.run(deployCtx, t)
	t.Cleanup(func() {
		stopDeployer()
		d.wait()
	})

	// The suite reads the supported features from the GatewayClass status, once the
	// controller has written it.
	waitFor(t, "GatewayClass strait with supported features in its status", func() bool {
		c, err := gw.GatewayV1().GatewayClasses().Get(ctx, className, metav1.GetOptions{})
		return err == nil && len(c.Status.SupportedFeatures) > 0
	})
	opts := suiteOptions(t, lc)
	cSuite, err := suite.NewConformanceTestSuite(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The suite counts as running until the cleanups Run registers are done, and cleanups
	// run last first: this one, registered before, reports after them.
	t.Cleanup(func() {
		report, err := cSuite.Report()
		if err != nil {
			t.Fatal(err)
		}
		writeReports(t, report)
	})
	cSuite.Setup(t, tests.ConformanceTests)
	if err := cSuite.Run(t, tests.ConformanceTests); err != nil {
		t.Fatal(err)
	}
}

// suiteOptions are the suite's options for the cluster: Strait's GatewayClass, the
// profiles of -conformance-profiles (GATEWAY-HTTP by default) and the features Strait claims.
func suiteOptions(t *testing.T, lc *localcluster.Cluster) suite.ConformanceOptions {
	t.Helper()
	c, err := client.New(lc.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, install := range []func(*runtime.Scheme) error{v1alpha3.Install, v1alpha2.Install, xv1alpha1.Install, gwapiv1.Install, apiextensionsv1.AddToScheme} {
		if err := install(c.Scheme()); err != nil {
			t.Fatal(err)
		}
	}
	opts := suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:     className,
			CleanupBaseResources: true,
			CleanupTestResources: true,
			Mode:                 "default",
			ConformanceProfiles:  []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName},
			Implementation: confv1.Implementation{
				Organization: "strait-gw",
				Project:      "strait",
				URL:          "https://github.com/strait-gw/strait",
				Version:      "dev",
				Contact:      []string{"https://github.com/strait-gw/strait/issues"},
			},
			UsableNetworkAddresses:   []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.IPAddressType), Value: usableAddress}},
			UnusableNetworkAddresses: []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.IPAddressType), Value: unusableAddress}},
		},
		Client:     c,
		Clientset:  kubernetes.NewForConfigOrDie(lc.Config),
		RestConfig: lc.Config,
		ManifestFS: []fs.FS{&gwconformance.Manifests},
	}
	opts.TimeoutConfig = config.DefaultTimeoutConfig()
	flags.ApplyAll(&opts.ConfigurableOptions)
	if *coreOnly {
		// The core features of every profile run; the suite adds them itself, so an empty
		// list of extended features is enough. Without it the suite reads the features
		// from the GatewayClass status, which needs the controller to have written it.
		opts.SupportedFeatures = []features.FeatureName{features.SupportGateway}
	}
	return opts
}

// writeReports writes the suite's report, one file per profile, to -report-dir, and logs it.
func writeReports(t *testing.T, report *confv1.ConformanceReport) {
	t.Helper()
	all, err := yaml.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("conformance report:\n%s", all)
	if *reportDir == "" {
		return
	}
	for _, p := range report.ProfileReports {
		one := *report
		one.ProfileReports = []confv1.ProfileReport{p}
		data, err := yaml.Marshal(one)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(*reportDir, p.Name+".yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}

// keepLogs logs the tail of the controller's and proxies' logs when the test failed.
func keepLogs(t *testing.T, dir string) {
	if !t.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		t.Logf("%s, last lines:\n%s", filepath.Base(l), strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
}

// waitFor polls cond every 200 ms until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
