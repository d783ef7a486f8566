package echo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(Identity{Cluster: "us", Namespace: "default", Pod: "echo-1"}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/a/b?x=1", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "v")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Response
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "us" || got.Pod != "echo-1" || got.Namespace != "default" || got.Path != "/a/b?x=1" ||
		got.Method != "POST" || got.BodyLength != 5 || got.Headers["X-Test"][0] != "v" {
		t.Errorf("unexpected echo: %+v", got)
	}

	req.Header.Set("X-Echo-Set-Status", "503")
	req.Body = http.NoBody
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want the 503 asked for", resp2.StatusCode)
	}
}
