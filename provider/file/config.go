package file

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/util/validation/field"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

// Config is a loaded configuration file.
type Config struct {
	// Path is the configuration file's path, cleaned; a relative path stays relative to the
	// working directory.
	Path string
	// StraitConfig is the file's content with defaults applied and validated. Each cluster's
	// Manifests is resolved against the file's directory.
	StraitConfig straitv1alpha1.StraitConfig
}

// Load reads the configuration file at configPath: it decodes it strictly (unknown fields
// are errors), applies defaults, validates it, resolves each cluster's manifests directory
// relative to the file's directory and checks that the directory exists. Every problem is
// reported, each at its line: the error is then an ErrorList.
func Load(configPath string) (*Config, error) {
	path := filepath.Clean(configPath)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := &Config{Path: path}
	errs := cfg.decode(data)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return cfg, nil
}

// decode fills cfg.StraitConfig from the file's content.
func (cfg *Config) decode(data []byte) ErrorList {
	at := func(line int, err error) *Error { return fileError(cfg.Path, line, err) }
	docs, err := parseDocuments(data)
	if err != nil {
		return ErrorList{at(0, err)}
	}
	if len(docs) != 1 {
		return ErrorList{at(0, fmt.Errorf("want exactly one YAML document, found %d", len(docs)))}
	}
	root := docs[0]
	value, err := toJSONValue(root)
	if err != nil {
		return ErrorList{at(root.Line, err)}
	}
	var errs ErrorList
	c := &cfg.StraitConfig
	for _, e := range decodeStrict(root, value, c) {
		errs = append(errs, at(0, e))
	}
	if len(errs) > 0 {
		return errs
	}

	c.Default()
	fieldErrs := c.Validate()
	dir := filepath.Dir(cfg.Path)
	for i := range c.Clusters {
		p := field.NewPath("clusters").Index(i)
		if err := resolvePath(dir, &c.Clusters[i].Manifests, p.Child("manifests"), true); err != nil {
			fieldErrs = append(fieldErrs, err)
		}
		if err := resolvePath(dir, &c.Clusters[i].Kubeconfig, p.Child("kubeconfig"), false); err != nil {
			fieldErrs = append(fieldErrs, err)
		}
	}
	for _, fe := range fieldErrs {
		errs = append(errs, at(lineOf(root, fe.Field), fe))
	}
	return errs
}

// resolvePath makes a non-empty *path absolute against dir and checks that it exists, as a
// directory when wantDir and as a file otherwise.
func resolvePath(dir string, path *string, p *field.Path, wantDir bool) *field.Error {
	if *path == "" {
		return nil
	}
	written := *path
	if !filepath.IsAbs(*path) {
		*path = filepath.Join(dir, *path)
	}
	*path = filepath.Clean(*path)
	fi, err := os.Stat(*path)
	switch {
	case wantDir && (err != nil || !fi.IsDir()):
		return field.Invalid(p, written, fmt.Sprintf("directory %s does not exist", *path))
	case !wantDir && (err != nil || fi.IsDir()):
		return field.Invalid(p, written, fmt.Sprintf("file %s does not exist", *path))
	}
	return nil
}
