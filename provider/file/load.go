package file

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// LoadInput reads the manifests of every cluster of cfg once and returns the translator's
// input, with clusters sorted by name and every resource slice sorted by namespace and name.
//
// Every *.yaml and *.yml file under a cluster's manifests directory is read, recursively
// and in lexical order; names starting with a dot are skipped (editor files, and the
// ..data directories of Kubernetes volume mounts), and symbolic links to directories are
// not followed (the manifests directory itself may be one). A file may hold several
// documents separated by "---"; a document may also be a v1 List. Documents are decoded
// strictly into the API types (the package documentation lists the kinds and versions),
// then adjusted as the API server would: namespaced objects without a namespace get
// "default", cluster-scoped ones lose theirs, Secret stringData is folded into data and the
// Secret type defaults to Opaque, every namespace an object lives in gets a Namespace
// object if the manifests define none, and every Namespace gets its
// kubernetes.io/metadata.name label. CRD defaults (of the Gateway API schemas, say) are
// not applied.
//
// Documents of other kinds are skipped with a Warning; LoadInput does not log warnings,
// its caller decides. Every other problem of every file is collected: if there is any,
// LoadInput returns no input and an ErrorList.
func LoadInput(cfg *Config) (*translator.Input, []Warning, error) {
	in := &translator.Input{
		BindAddress: cfg.StraitConfig.Proxy.BindAddress,
		// The config file describes the all-in-one process: every Gateway's proxy shares
		// this host.
		SharedHost: true,
	}
	var errs ErrorList
	var warnings []Warning
	for i, c := range cfg.StraitConfig.Clusters {
		if c.Kubeconfig != "" {
			p := field.NewPath("clusters").Index(i).Child("kubeconfig")
			errs = append(errs, fileError(cfg.Path, 0, field.Invalid(p, c.Kubeconfig,
				"cluster "+c.Name+" is read from its API server: only strait controller reads kubeconfig clusters")))
			continue
		}
		l := newClusterLoader(c)
		l.load(c.Manifests)
		in.Clusters = append(in.Clusters, l.cr)
		errs = append(errs, l.errs...)
		warnings = append(warnings, l.warnings...)
	}
	if err := errs.sorted(); err != nil {
		return nil, warnings, err
	}
	slices.SortFunc(in.Clusters, func(a, b *translator.ClusterResources) int {
		return cmp.Compare(a.Cluster.Name, b.Cluster.Name)
	})
	return in, warnings, nil
}

// objectKey identifies an object within a cluster.
type objectKey struct {
	kind            schema.GroupKind
	namespace, name string
}

// origin is where an object was read.
type origin struct {
	file string
	line int
}

// clusterLoader reads the manifests of one cluster.
type clusterLoader struct {
	cr       *translator.ClusterResources
	seen     map[objectKey]origin
	errs     ErrorList
	warnings []Warning
	// namespaces are the namespaces objects live in, and whether a Namespace defines them.
	namespaces map[string]bool
}

func newClusterLoader(c straitv1alpha1.ClusterConfig) *clusterLoader {
	return &clusterLoader{
		cr: &translator.ClusterResources{Cluster: translator.Cluster{
			Name:    c.Name,
			Region:  c.Region,
			Zone:    c.Zone,
			Network: c.Network,
			Labels:  c.Labels,
		}},
		seen:       map[objectKey]origin{},
		namespaces: map[string]bool{},
	}
}

// load reads every manifest under dir, then completes and sorts the cluster's resources.
func (l *clusterLoader) load(dir string) {
	root := walkRoot(dir)
	// The callback records every error itself and never fails the walk.
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			l.errs = append(l.errs, &Error{File: filepath.Clean(path), Err: err})
			return nil //nolint:nilerr // recorded above; the walk goes on to report every problem
		}
		if path != root && isHidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && isManifest(d.Name()) {
			l.loadFile(path)
		}
		return nil
	})
	l.addImplicitNamespaces()
	for _, k := range kinds {
		if k.sort != nil {
			k.sort(l.cr)
		}
	}
}

// isManifest says, by its name, whether a file holds manifests.
func isManifest(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// isHidden says whether a file or directory name is skipped.
func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// loadFile loads every document of a file.
func (l *clusterLoader) loadFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, &Error{File: path, Err: err})
		return
	}
	docs, err := parseDocuments(data)
	for _, doc := range docs {
		l.loadDocument(path, doc)
	}
	if err != nil {
		l.errorAt(path, 0, err)
	}
}

// errorAt records err in file; a *lineError carries its line, otherwise line is used.
func (l *clusterLoader) errorAt(file string, line int, err error) {
	l.errs = append(l.errs, fileError(file, line, err))
}

// warn records a warning about the document at line of file.
func (l *clusterLoader) warn(file string, line int, format string, args ...any) {
	l.warnings = append(l.warnings, Warning{File: file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// loadDocument decodes one document (or, for a v1 List, each of its items) and adds it to
// the cluster's resources.
func (l *clusterLoader) loadDocument(file string, root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		l.errorAt(file, root.Line, errors.New("a manifest must be a mapping (an object)"))
		return
	}
	apiVersion, kindName := scalarField(root, "apiVersion"), scalarField(root, "kind")
	if apiVersion == "" || kindName == "" {
		l.errorAt(file, root.Line, errors.New("apiVersion and kind are required"))
		return
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		l.errorAt(file, lineOf(root, "apiVersion"), fmt.Errorf("invalid apiVersion: %w", err))
		return
	}
	if gv == corev1.SchemeGroupVersion && kindName == "List" {
		l.loadList(file, root)
		return
	}
	k, ok := kinds[gv.WithKind(kindName).GroupKind()]
	if !ok {
		l.warn(file, root.Line, "skipped %s %s: not a kind Strait reads", apiVersion, kindName)
		return
	}
	if !slices.Contains(k.versions, gv.Version) {
		accepted := make([]string, len(k.versions))
		for i, v := range k.versions {
			accepted[i] = schema.GroupVersion{Group: gv.Group, Version: v}.String()
		}
		l.errorAt(file, lineOf(root, "apiVersion"), fmt.Errorf("%s is not served in %s; use %s", kindName, apiVersion, strings.Join(accepted, ", ")))
		return
	}

	value, err := toJSONValue(root)
	if err != nil {
		l.errorAt(file, root.Line, err)
		return
	}
	obj := k.newObject()
	if errs := decodeStrict(root, value, obj); len(errs) > 0 {
		for _, e := range errs {
			l.errorAt(file, 0, e)
		}
		return
	}
	obj.GetObjectKind().SetGroupVersionKind(k.gvk)
	l.add(file, root, k, obj)
}

// loadList loads each item of a v1 List, as kubectl does.
func (l *clusterLoader) loadList(file string, root *yaml.Node) {
	items := fieldNode(root, "items")
	if items == nil || items.Kind != yaml.SequenceNode {
		l.errorAt(file, root.Line, errors.New("a List needs a list of items"))
		return
	}
	for _, item := range items.Content {
		l.loadDocument(file, item)
	}
}

// add applies the API server's adjustments to a decoded object and adds it to the cluster's
// resources.
func (l *clusterLoader) add(file string, root *yaml.Node, k kind, obj object) {
	kindName := k.gvk.Kind
	if obj.GetName() == "" {
		l.errorAt(file, lineOf(root, "metadata"), fmt.Errorf("%s: metadata.name is required", kindName))
		return
	}
	switch {
	case k.clusterScoped && obj.GetNamespace() != "":
		l.warn(file, root.Line, "%s %s is cluster-scoped: metadata.namespace %q ignored", kindName, obj.GetName(), obj.GetNamespace())
		obj.SetNamespace("")
	case !k.clusterScoped && obj.GetNamespace() == "":
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	name := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}

	key := objectKey{kind: k.gvk.GroupKind(), namespace: obj.GetNamespace(), name: obj.GetName()}
	if first, dup := l.seen[key]; dup {
		l.errorAt(file, root.Line, fmt.Errorf("duplicate %s %s: already defined at %s:%d", kindName, name, first.file, first.line))
		return
	}
	l.seen[key] = origin{file: file, line: root.Line}

	if k.add == nil {
		l.warn(file, root.Line, "skipped %s %s: the file provider takes its clusters from the config file", kindName, name)
		return
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		l.namespaces[o.Name] = true
		o.Labels = withNameLabel(o.Labels, o.Name)
	case *corev1.Secret:
		foldStringData(o)
	}
	if ns := obj.GetNamespace(); ns != "" && !l.namespaces[ns] {
		l.namespaces[ns] = false
	}
	k.add(l.cr, obj)
}

// addImplicitNamespaces adds a Namespace for every namespace objects live in that no
// Namespace manifest defines, as if it had been created with kubectl create namespace.
func (l *clusterLoader) addImplicitNamespaces() {
	for ns, defined := range l.namespaces {
		if defined {
			continue
		}
		l.cr.Namespaces = append(l.cr.Namespaces, &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: withNameLabel(nil, ns)},
		})
	}
}

// withNameLabel sets the kubernetes.io/metadata.name label the API server puts on every
// Namespace, which namespace selectors commonly match.
func withNameLabel(labels map[string]string, name string) map[string]string {
	if labels == nil {
		labels = make(map[string]string, 1)
	}
	labels[corev1.LabelMetadataName] = name
	return labels
}

// foldStringData moves a Secret's stringData into its data, overriding keys of data, and
// defaults its type to Opaque, as the API server does.
func foldStringData(s *corev1.Secret) {
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
}

// fieldNode returns the value of key in a mapping node, or nil.
func fieldNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalarField returns the scalar value of key in a mapping node, or "".
func scalarField(n *yaml.Node, key string) string {
	if v := fieldNode(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}
