package file

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// kubeDataDir is the symbolic link Kubernetes swaps, atomically, to update the files of a
// ConfigMap or Secret volume: its change is the one event such an update makes that names
// no hidden file.
const kubeDataDir = "..data"

// syncWatches makes the watcher watch exactly the configuration file's directory and every
// directory under each cluster's manifests directory (hidden ones excepted). For a manifests
// directory that does not exist, its nearest existing ancestor is watched instead, to see
// it appear. Watching directories rather than files survives editors that save by
// renaming a new file over the old one.
func (p *Provider) syncWatches(w *fsnotify.Watcher) {
	want := map[string]bool{filepath.Dir(p.cfg.Path): true}
	for _, c := range p.cfg.StraitConfig.Clusters {
		dir := c.Manifests
		if _, err := os.Stat(dir); err != nil {
			want[existingAncestor(dir)] = true
			continue
		}
		_ = filepath.WalkDir(walkRoot(dir), func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil || !d.IsDir():
				return nil //nolint:nilerr // an unreadable directory is reported by the load
			case path != walkRoot(dir) && isHidden(d.Name()):
				return filepath.SkipDir
			}
			want[filepath.Clean(path)] = true
			return nil
		})
	}
	for _, path := range w.WatchList() {
		if !want[path] {
			_ = w.Remove(path) // fails only if the directory, and so its watch, is gone
		}
	}
	// Adding a watched directory again is harmless, and simpler than tracking which watches
	// the system dropped when their directory was removed.
	for path := range want {
		if err := w.Add(path); err != nil {
			p.log.Warn("cannot watch directory; its changes will be missed", "path", path, "error", err)
		}
	}
}

// relevant says whether a file system event may change the configuration: a change to the
// configuration file, or to a non-hidden file or directory under (or above) a manifests
// directory. Changes of permissions alone are not.
func (p *Provider) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	base := filepath.Base(name)
	if name == p.cfg.Path || (base == kubeDataDir && filepath.Dir(name) == filepath.Dir(p.cfg.Path)) {
		return true
	}
	for _, c := range p.cfg.StraitConfig.Clusters {
		if within(name, c.Manifests) && (base == kubeDataDir || !isHidden(base) || name == c.Manifests) {
			return true
		}
		if within(c.Manifests, name) {
			return true
		}
	}
	return false
}

// within says whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// existingAncestor returns the nearest ancestor of dir that exists.
func existingAncestor(dir string) string {
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
	}
}

// walkRoot returns dir with a trailing separator, so that filepath.WalkDir descends into it
// even when it is a symbolic link to a directory.
func walkRoot(dir string) string {
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return dir
	}
	return dir + string(filepath.Separator)
}
