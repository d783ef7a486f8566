// Package v1alpha1 holds Strait's own API types, group strait.dev, version v1alpha1:
//
//   - StraitConfig, the configuration file read by `strait run` and `strait translate`
//     (a file format, not a CRD);
//   - ClusterLink, a CRD in the control plane's home cluster that declares one member cluster;
//   - BackendTrafficPolicy, a CRD in member clusters that configures health checks, outlier
//     detection, load balancing, circuit breakers and timeouts of Services and ServiceImports.
//
// The CRD YAML under config/crd/bases is generated from these types, and so is
// zz_generated.deepcopy.go, by running at the module's root:
//
//	go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=./api/... \
//		crd:crdVersions=v1 output:crd:artifacts:config=config/crd/bases
//
// +kubebuilder:object:generate=true
// +groupName=strait.dev
package v1alpha1
