package latest

import "testing"

func TestLatest(t *testing.T) {
	var l Value[int]
	early := l.Subscribe()
	l.Publish(1)
	l.Publish(2) // replaces the unread 1
	if got := <-early; got != 2 {
		t.Errorf("early subscriber got %d, want 2", got)
	}
	late := l.Subscribe()
	if got := <-late; got != 2 {
		t.Errorf("late subscriber got %d, want the current 2", got)
	}
	l.Publish(3)
	l.Close()
	for _, ch := range []<-chan int{early, late} {
		if got, ok := <-ch; !ok || got != 3 {
			t.Errorf("got %d, %v; want 3 before the close", got, ok)
		}
		if _, ok := <-ch; ok {
			t.Error("channel not closed")
		}
	}
	if got, ok := <-l.Subscribe(); !ok || got != 3 {
		t.Errorf("subscriber after close got %d, %v; want 3", got, ok)
	}
}
