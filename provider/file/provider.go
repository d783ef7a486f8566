package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/strait-gw/strait/provider/internal/latest"
	"github.com/strait-gw/strait/translator"
)

// DefaultDebounce is how long the provider waits after the last change to a watched file
// before it reloads: editors, git and deployment tools write several files, or one file
// several times, in a burst.
const DefaultDebounce = 100 * time.Millisecond

// Options tune a Provider. The zero value is ready to use.
type Options struct {
	// Debounce is the quiet period after a change before reloading. Default:
	// DefaultDebounce.
	Debounce time.Duration
	// OnError, if set, is called with the error of every failed reload (an ErrorList when
	// the files have problems), after it is logged. It runs on the provider's goroutine
	// and must not block.
	OnError func(error)
	// Logger receives the provider's logs. Default: slog.Default().
	Logger *slog.Logger
}

// Provider reads the member clusters' manifests from files and publishes a
// translator.Input each time they change. It is a runner: Start it once.
type Provider struct {
	cfg    *Config
	opts   Options
	log    *slog.Logger
	inputs latest.Value[*translator.Input]
}

// New returns a Provider for a loaded configuration. The configuration file is watched too:
// a change to it reloads the clusters and the proxy's bind address; changes to the xds and
// admin addresses take effect on restart.
func New(cfg *Config, opts Options) *Provider {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Provider{cfg: cfg, opts: opts, log: log.With("runner", "file-provider")}
}

// Name names the runner.
func (p *Provider) Name() string { return "file-provider" }

// Subscribe returns a channel that receives the latest Input: the current one, if any, and
// each new one. The channel holds one value, and a newer Input replaces one not yet read.
// It is closed when Start returns.
func (p *Provider) Subscribe() <-chan *translator.Input { return p.inputs.Subscribe() }

// Start loads the manifests and publishes the Input, then watches the configuration file
// and every manifests directory (subdirectories created later included) and publishes a
// new Input after each burst of changes. A reload that fails is logged and passed to
// Options.OnError, and the last good Input stays published; the next good reload is
// published even if it equals that Input, to signal the recovery. A reload that changes
// nothing is not published.
//
// Start blocks until ctx is done and then returns nil. It returns an error at once if the
// watcher cannot be created or the first load fails: there is no good Input to serve then.
func (p *Provider) Start(ctx context.Context) error {
	defer p.inputs.Close()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file provider: create watcher: %w", err)
	}
	defer func() { _ = w.Close() }()

	// Watch before reading, so that no change made during the first load goes unseen.
	p.syncWatches(w)
	last, err := p.load()
	if err != nil {
		return fmt.Errorf("file provider: %w", err)
	}
	p.inputs.Publish(last)
	failed := false

	// The timer is armed by changes and fires once they stop for opts.Debounce. (Since
	// Go 1.23, Reset needs no draining of the channel.)
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if p.relevant(ev) {
				p.log.Debug("change", "path", ev.Name, "op", ev.Op.String())
				debounce.Reset(p.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: reload to catch up.
			p.log.Warn("watch error", "error", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				debounce.Reset(p.opts.Debounce)
			}
		case <-debounce.C:
			in, err := p.reload(w)
			if err != nil {
				failed = true
				p.reportError(err)
				continue
			}
			if !failed && reflect.DeepEqual(in, last) {
				p.log.Debug("reload changed nothing")
				continue
			}
			failed = false
			last = in
			p.log.Info("configuration reloaded", "clusters", len(in.Clusters))
			p.inputs.Publish(in)
		}
	}
}

// reload reloads the configuration file, then the manifests.
func (p *Provider) reload(w *fsnotify.Watcher) (*translator.Input, error) {
	cfg, err := Load(p.cfg.Path)
	if err != nil {
		// Directories created since the last load still need watching.
		p.syncWatches(w)
		return nil, err
	}
	old, cur := p.cfg.StraitConfig, cfg.StraitConfig
	if old.XDS != cur.XDS || old.Admin != cur.Admin {
		p.log.Warn("xds and admin addresses changed in the config file; they take effect on restart",
			"xds", cur.XDS, "admin", cur.Admin)
	}
	p.cfg = cfg
	p.syncWatches(w)
	return p.load()
}

// load loads the manifests of p.cfg, logging warnings. A panic in a decoder becomes an
// error, so that one bad file cannot bring down the process.
func (p *Provider) load() (in *translator.Input, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("load manifests: panic: %v", r)
		}
	}()
	in, warnings, err := LoadInput(p.cfg)
	for _, w := range warnings {
		p.log.Warn("manifest skipped or adjusted", "file", w.File, "line", w.Line, "warning", w.Message)
	}
	return in, err
}

// reportError logs a failed reload, one record per problem, and hands it to OnError.
func (p *Provider) reportError(err error) {
	var list ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			p.log.Error("reload failed; keeping the last good configuration", "file", e.File, "line", e.Line, "error", e.Err)
		}
	} else {
		p.log.Error("reload failed; keeping the last good configuration", "error", err)
	}
	if p.opts.OnError != nil {
		p.opts.OnError(err)
	}
}
