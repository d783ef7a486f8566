package file

import "testing"

func TestLatest(t *testing.T) {
	var l latest[int]
	early := l.subscribe()
	l.publish(1)
	l.publish(2) // replaces the unread 1
	if got := <-early; got != 2 {
		t.Errorf("early subscriber got %d, want 2", got)
	}
	late := l.subscribe()
	if got := <-late; got != 2 {
		t.Errorf("late subscriber got %d, want the current 2", got)
	}
	l.publish(3)
	l.close()
	for _, ch := range []<-chan int{early, late} {
		if got, ok := <-ch; !ok || got != 3 {
			t.Errorf("got %d, %v; want 3 before the close", got, ok)
		}
		if _, ok := <-ch; ok {
			t.Error("channel not closed")
		}
	}
	if got, ok := <-l.subscribe(); !ok || got != 3 {
		t.Errorf("subscriber after close got %d, %v; want 3", got, ok)
	}
}
