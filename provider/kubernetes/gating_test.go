package kubernetes

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/strait-gw/strait/translator"
)

// testMember adds a member that watches nothing, synced or not, started at started.
func (p *Provider) testMember(name string, synced bool, started time.Time) *member {
	m := p.newMember(translator.Cluster{Name: name}, &Clients{})
	m.started = started
	if synced {
		close(m.ready)
	}
	p.members[name] = m
	return m
}

// published returns the Input published, or nil.
func published(ch <-chan *translator.Input) *translator.Input {
	select {
	case in := <-ch:
		return in
	default:
		return nil
	}
}

// TestPublishWaitsForSync checks that nothing is published until every cluster has synced,
// that the log names the clusters still waiting, and that a cluster that does not sync in
// SyncTimeout is left out.
func TestPublishWaitsForSync(t *testing.T) {
	var logs bytes.Buffer
	p := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), SyncTimeout: time.Hour})
	ch := p.Subscribe()
	p.testMember("us", true, time.Now())
	eu := p.testMember("eu", false, time.Now())
	ap := p.testMember("ap", false, time.Now())

	p.publish()
	if in := published(ch); in != nil {
		t.Fatalf("published %v before eu and ap synced", clusterNames(in))
	}
	if !strings.Contains(logs.String(), `msg="waiting for clusters to sync before translating" runner=kubernetes-provider clusters="[ap eu]"`) {
		t.Errorf("log does not name the clusters waiting:\n%s", logs.String())
	}
	if !p.waiting {
		t.Error("not waiting")
	}

	close(eu.ready)
	ap.started = time.Now().Add(-2 * time.Hour)
	p.publish()
	in := published(ch)
	if in == nil {
		t.Fatal("nothing published once the one unsynced cluster passed SyncTimeout")
	}
	if got := clusterNames(in); strings.Join(got, ",") != "eu,us" {
		t.Errorf("clusters %v, want eu and us without ap", got)
	}
	if !strings.Contains(logs.String(), `msg="translating without clusters that have not synced; they join when they do" runner=kubernetes-provider clusters=[ap]`) {
		t.Errorf("log does not name the cluster left out:\n%s", logs.String())
	}

	close(ap.ready)
	p.publish()
	if in := published(ch); in == nil || len(in.Clusters) != 3 {
		t.Errorf("ap did not join once synced")
	}
}
