package h2

import (
	"bytes"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// op is one piece of the writer's batch: a control frame, or what a stream has ready.
type op struct {
	c        ctrl
	s        *Stream
	head     bool      // write the response head
	interims []interim // informational heads, before anything else of the stream
	data     []byte    // body bytes the windows allow
	end      bool      // END_STREAM after data (on the head if there is no data)
	trail    bool      // trailers, with END_STREAM
	done     bool      // the stream's handed-off output is all in this op
	keep     bool      // the writer keeps its reference (the stream waits for credit)
	status   int
}

// headerBuf collects an encoded header block.
type headerBuf struct{ bytes.Buffer }

// statusText holds :status values, so that writing one allocates nothing.
var statusText = func() (t [1000]string) {
	for i := 100; i < 1000; i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// writeLoop is the connection's only writer. It takes everything ready under the lock,
// writes it into the buffer outside it, and flushes the socket only when nothing else is
// ready: frames of many streams share a system call.
func (c *serverConn) writeLoop() {
	defer close(c.writerDone)
	var err error
	yielded := false
	for {
		c.mu.Lock()
		for len(c.ctrls) == 0 && len(c.ready) == 0 && !c.writerExit {
			if c.bw.Buffered() > 0 && err == nil {
				c.mu.Unlock()
				if !yielded {
					// Handlers that are about to finish get to add their frames to this
					// system call first.
					yielded = true
					runtime.Gosched()
				} else {
					yielded = false
					err = c.bw.Flush()
				}
				c.mu.Lock()
				continue
			}
			c.writerIdle = true
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		if len(c.ctrls) == 0 && len(c.ready) == 0 {
			// writerExit: everything asked for is written.
			closed := c.closed
			c.mu.Unlock()
			if err == nil {
				err = c.bw.Flush()
			}
			if !closed {
				c.endGracefully(err)
			}
			return
		}
		batch, maxFrame := c.collectLocked(c.batch[:0]), c.peerFrame
		c.mu.Unlock()
		if err == nil {
			err = c.writeBatch(batch, maxFrame)
			if err != nil {
				_ = c.nc.Close() // the reader ends too
			}
		}
		c.mu.Lock()
		c.completeLocked(batch)
		c.mu.Unlock()
		clear(batch)
		c.batch = batch[:0]
	}
}

// endGracefully half-closes a connection whose last frame (GOAWAY) is written and lets the
// reader see the client's end of it, for at most a second.
func (c *serverConn) endGracefully(err error) {
	if err != nil {
		_ = c.nc.Close()
		return
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
}

// collectLocked moves what is ready into batch, taking flow-control credit for the data.
func (c *serverConn) collectLocked(batch []op) []op {
	for _, k := range c.ctrls {
		batch = append(batch, op{c: k})
	}
	clear(c.ctrls)
	c.ctrls = c.ctrls[:0]
	ready := c.ready
	c.ready, c.spare = c.spare[:0], ready
	for i, s := range ready {
		ready[i] = nil
		s.queued = false
		if s.closed {
			batch = append(batch, op{s: s, done: true}) // drops the reference after the batch
			continue
		}
		o := op{s: s, interims: s.interims}
		s.interims = nil
		if s.headPending {
			o.head, o.status = true, s.status
			s.headPending = false
		}
		n := min(int64(len(s.out)), s.sendWin, c.sendWin)
		if n > 0 {
			o.data = s.out[:n]
			s.out = s.out[n:]
			s.sendWin -= n
			c.sendWin -= n
		}
		if len(s.out) == 0 {
			if s.outEnd {
				if len(s.respTrail) > 0 {
					o.trail = true
				} else {
					o.end = true
				}
				s.sendClosed = true
			}
			o.done = true
		} else if s.sendWin > 0 {
			// Waiting for the connection's credit: WINDOW_UPDATE on stream 0 requeues it.
			s.queued = true
			o.keep = true
			c.connBlocked = append(c.connBlocked, s)
		}
		// Else it waits for the stream's credit: WINDOW_UPDATE on it requeues it.
		batch = append(batch, o)
	}
	return batch
}

// completeLocked wakes the handlers whose output the batch took in full and closes the
// streams it ended.
func (c *serverConn) completeLocked(batch []op) {
	for i := range batch {
		o := &batch[i]
		s := o.s
		if s == nil {
			continue
		}
		if o.done && s.outBusy {
			s.outBusy = false
			s.cond.Broadcast()
		}
		if (o.end || o.trail) && !s.closed {
			if !s.recvClosed {
				// The response is complete before the request: the client may stop sending
				// (RFC 9113 8.1).
				c.ctrls = append(c.ctrls, ctrl{kind: ctrlRST, stream: s.id, code: http2.ErrCodeNo})
				c.wakeWriter()
			}
			c.closeStreamLocked(s, nil)
		}
		if !o.keep {
			c.unrefLocked(s)
		}
	}
}

// writeBatch writes the batch's frames into the buffer, which flushes itself when full.
func (c *serverConn) writeBatch(batch []op, maxFrame uint32) error {
	fr := c.wfr
	for i := range batch {
		o := &batch[i]
		if o.s == nil {
			if err := c.writeCtrl(&o.c); err != nil {
				return err
			}
			continue
		}
		s := o.s
		for _, h := range o.interims {
			c.hbuf.Reset()
			_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText[h.status]})
			for _, f := range h.fields {
				_ = c.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
			}
			if err := c.writeBlock(s.id, false, maxFrame); err != nil {
				return err
			}
		}
		if o.head {
			c.hbuf.Reset()
			_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText[o.status]})
			for _, f := range s.resp {
				_ = c.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
			}
			if err := c.writeBlock(s.id, o.end && len(o.data) == 0, maxFrame); err != nil {
				return err
			}
		}
		data := o.data
		for len(data) > 0 {
			n := min(len(data), int(maxFrame))
			if err := c.writeData(s.id, o.end && n == len(data), data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		if o.end && !o.head && len(o.data) == 0 {
			if err := fr.WriteData(s.id, true, nil); err != nil {
				return err
			}
		}
		if o.trail {
			c.hbuf.Reset()
			for _, f := range s.respTrail {
				_ = c.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
			}
			if err := c.writeBlock(s.id, true, maxFrame); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeData writes one DATA frame without copying data into the Framer's buffer first.
func (c *serverConn) writeData(id uint32, end bool, data []byte) error {
	h := &c.dataHead
	n := len(data)
	h[0], h[1], h[2] = byte(n>>16), byte(n>>8), byte(n)
	h[3] = byte(http2.FrameData)
	h[4] = 0
	if end {
		h[4] = byte(http2.FlagDataEndStream)
	}
	h[5], h[6], h[7], h[8] = byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id)
	if _, err := c.bw.Write(h[:]); err != nil {
		return err
	}
	_, err := c.bw.Write(data)
	return err
}

// writeBlock writes the header block in c.hbuf as HEADERS and as many CONTINUATION frames
// as the client's frame size calls for.
func (c *serverConn) writeBlock(id uint32, end bool, maxFrame uint32) error {
	blk := c.hbuf.Bytes()
	first := blk[:min(len(blk), int(maxFrame))]
	blk = blk[len(first):]
	err := c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(blk) == 0})
	for err == nil && len(blk) > 0 {
		frag := blk[:min(len(blk), int(maxFrame))]
		blk = blk[len(frag):]
		err = c.wfr.WriteContinuation(id, len(blk) == 0, frag)
	}
	return err
}

func (c *serverConn) writeCtrl(k *ctrl) error {
	fr := c.wfr
	switch k.kind {
	case ctrlSettings:
		return fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.cfg.MaxConcurrentStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.cfg.InitialWindowSize},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.cfg.MaxFrameSize},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.cfg.MaxHeaderListSize},
		)
	case ctrlSettingsAck:
		if k.table {
			// The client's decoder table size applies from the ACK on (RFC 7541 4.2).
			c.henc.SetMaxDynamicTableSizeLimit(k.n)
		}
		return fr.WriteSettingsAck()
	case ctrlPing:
		return fr.WritePing(true, k.ping)
	case ctrlWindowUpdate:
		return fr.WriteWindowUpdate(k.stream, k.n)
	case ctrlRST:
		return fr.WriteRSTStream(k.stream, k.code)
	case ctrlGoAway:
		return fr.WriteGoAway(k.stream, k.code, nil)
	}
	return nil
}
