// Package kubernetes is the Kubernetes provider: it watches the API servers of the member
// clusters with informers and publishes a translator.Input after each burst of changes,
// like the file provider does for files.
//
// Member clusters are given up front (ClusterSpec: the --kubeconfig flags and the config
// file's kubeconfig entries of `strait controller`) or by ClusterLinks in the home cluster
// (Home), which may come, change and go at run time: a new link starts its cluster, a
// rotated kubeconfig rebuilds it (the old informers serve until the new ones have synced),
// and a removed link stops it.
//
// Each cluster has informers for exactly the kinds the translator reads, those its API
// server serves (discovery decides: a kind whose CRD is missing is not watched). Strait's own
// BackendTrafficPolicies, which have no generated clientset, are watched with a dynamic
// informer and turned into typed objects before they are cached. To keep
// memory low, objects lose their managedFields and kubectl's last-applied annotation before
// they are cached, Secrets of types the translator never reads (service account tokens,
// Helm releases, registry credentials...) are not watched, and Secrets and ConfigMaps keep
// only their tls.crt, tls.key and ca.crt keys. The Input carries only the Secrets and
// ConfigMaps that Gateways and BackendTLSPolicies refer to, and changes to the others
// publish nothing. The Input's objects are the informers' own: the translator must not
// modify them (it does not).
//
// The first Input waits until every cluster has synced once, or SyncTimeout has passed for
// the ones that have not. Each API server is probed (GET /readyz) every ProbeInterval and
// at once after a watch error; a cluster whose probe fails is stale: its last known
// resources stay in the Input, strait_cluster_stale{cluster} is 1 and its ClusterLink's
// Ready condition is False with reason Unreachable, until a probe succeeds again (the
// informers relist by themselves).
//
// Registry gives the status and mirror writers each cluster's clients; Elector tells them
// whether this replica is the leader.
package kubernetes
