// Tools module that builds the Gateway API conformance echo server (echo-basic,
// image gcr.io/k8s-staging-gateway-api/echo-basic) from the conformance module
// matching sigs.k8s.io/gateway-api v1.6.3, for the process kubelet in e2e/kubelet.
// Kept separate so that the conformance module's dependencies (controller-runtime,
// testify, ...) never reach github.com/strait-gw/strait's go.mod.
//
// The conformance module replaces sigs.k8s.io/gateway-api with ../ and requires it
// at v0.0.0; replaces do not apply to dependents, so it is pinned to v1.6.3 here.
module github.com/strait-gw/strait/hack/echo-basic

go 1.26.0

tool sigs.k8s.io/gateway-api/conformance/echo-basic

require (
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sys v0.45.0 // indirect
	golang.org/x/text v0.37.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260427160629-7cedc36a6bc4 // indirect
	google.golang.org/grpc v1.81.1 // indirect
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af // indirect
	sigs.k8s.io/gateway-api/conformance v1.6.3 // indirect
)
