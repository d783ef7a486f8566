// Package file is the file provider: it reads the member clusters from a StraitConfig file
// (Load) and each cluster's resources from a directory of YAML manifests (LoadInput), and
// as a runner (Provider) publishes a new translator.Input whenever those files change.
//
// Manifests are decoded strictly into the API types, and problems are reported the way a
// compiler reports them, "file:line: problem", all of them at once. The kinds read, and the
// apiVersions accepted for each:
//
//	gateway.networking.k8s.io  GatewayClass, Gateway, HTTPRoute   v1, v1beta1
//	                           ReferenceGrant                     v1, v1beta1, v1alpha2
//	                           GRPCRoute, TCPRoute                v1, v1alpha2
//	                           TLSRoute                           v1, v1alpha3, v1alpha2
//	                           BackendTLSPolicy                   v1, v1alpha3
//	core (v1)                  Namespace, Service, Secret, ConfigMap
//	discovery.k8s.io/v1        EndpointSlice
//	multicluster.x-k8s.io      ServiceExport, ServiceImport       v1alpha1
//	strait.dev/v1alpha1        BackendTrafficPolicy
//	                           ClusterLink (validated, then skipped with a warning)
//
// Gateway API objects are all decoded into the sigs.k8s.io/gateway-api v1.6.3 apis/v1 types
// and carry apiVersion gateway.networking.k8s.io/v1 afterwards. The older versions accepted
// are those for which gateway-api v1.6.3 still has Go types, all wire-compatible with v1;
// strict decoding rejects any field v1 lacks. v1alpha2 GatewayClass, Gateway and HTTPRoute
// (removed in v1.0) and v1alpha2 BackendTLSPolicy (a single targetRef and spec.tls, unlike
// v1) are rejected. A v1 List is read item by item; documents of any other kind are skipped
// with a warning.
package file
