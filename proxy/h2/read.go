package h2

import (
	"errors"
	"os"
	"time"

	"golang.org/x/net/http2"
)

// maxQueuedCtrl bounds the control frames waiting for the writer.
const maxQueuedCtrl = 4096

// readLoop reads and handles frames until the connection fails or a connection error is
// found (returned as http2.ConnectionError).
func (c *serverConn) readLoop() error {
	for {
		fh, err := c.rfr.ReadFrameHeader()
		if err != nil {
			if errors.Is(err, http2.ErrFrameTooLarge) {
				return http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			return c.readErr(err)
		}
		if !c.sawSettings && fh.Type != http2.FrameSettings {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		f, err := c.rfr.ReadFrameForHeader(fh)
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) && fh.Type != http2.FrameHeaders && fh.Type != http2.FrameContinuation {
				c.streamError(se.StreamID, se.Code)
				continue
			}
			if errors.As(err, &se) {
				// A header block that was not decoded leaves HPACK out of step.
				return http2.ConnectionError(se.Code)
			}
			return c.readErr(err)
		}
		if err := c.handleFrame(f); err != nil {
			return err
		}
		c.mu.Lock()
		flood := len(c.ctrls) > maxQueuedCtrl
		c.mu.Unlock()
		if flood {
			// SETTINGS, PINGs, or frames answered by RST_STREAM, from a client that does
			// not read what they call for.
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	}
}

// readErr turns a read failure into serve's result: a drained connection's read deadline
// is its normal end.
func (c *serverConn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		drained := c.goneAway && c.writerExit
		c.mu.Unlock()
		if drained {
			return errGracefulEnd
		}
	}
	return err
}

func (c *serverConn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.HeadersFrame:
		return c.onHeaders(f)
	case *http2.ContinuationFrame:
		return c.onContinuation(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.mu.Lock()
			c.ctrls = append(c.ctrls, ctrl{kind: ctrlPing, ping: f.Data})
			c.wakeWriter()
			c.mu.Unlock()
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goneAway = true
		c.checkDrainedLocked()
		c.mu.Unlock()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

func (c *serverConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.sawSettings = true
	c.mu.Lock()
	defer c.mu.Unlock()
	ack := ctrl{kind: ctrlSettingsAck}
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingHeaderTableSize:
			ack.n, ack.table = st.Val, true
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - int64(c.peerWin)
			c.peerWin = int32(st.Val)
			for _, s := range c.streams {
				s.sendWin += delta
				if s.sendWin > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				if delta > 0 && s.sendWin > 0 && s.outBusy && !s.queued && len(s.out) > 0 {
					c.enqueueLocked(s)
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerFrame = st.Val
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.ctrls = append(c.ctrls, ack)
	c.wakeWriter()
	return nil
}

func (c *serverConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
		if c.sendWin > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.ready = append(c.ready, c.connBlocked...) // with the writer's references
		c.connBlocked = c.connBlocked[:0]
		c.wakeWriter()
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	s.sendWin += int64(f.Increment)
	if s.sendWin > 1<<31-1 {
		c.streamErrorLocked(s.id, http2.ErrCodeFlowControl)
		return nil
	}
	if s.outBusy && !s.queued && len(s.out) > 0 {
		c.enqueueLocked(s)
	}
	return nil
}

func (c *serverConn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	if !s.handlerDone {
		// Rapid reset (CVE-2023-44487): each reset of a stream still being served costs a
		// token.
		now := time.Now()
		if !c.resetLast.IsZero() {
			c.resetToken += now.Sub(c.resetLast).Seconds() * c.cfg.MaxResetRate
			c.resetToken = min(c.resetToken, float64(c.cfg.MaxResetBurst))
		}
		c.resetLast = now
		c.resetToken--
		if c.resetToken < 0 {
			c.closeStreamLocked(s, StreamError{Code: f.ErrCode, Remote: true})
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	}
	c.closeStreamLocked(s, StreamError{Code: f.ErrCode, Remote: true})
	return nil
}

func (c *serverConn) onData(f *http2.DataFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(f.Length)
	if n > c.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWin -= n
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.creditLocked(nil, n)
		c.streamErrorLocked(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	if s.recvClosed {
		c.creditLocked(nil, n)
		c.streamErrorLocked(s.id, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > s.recvWin {
		c.creditLocked(nil, n)
		c.streamErrorLocked(s.id, http2.ErrCodeFlowControl)
		return nil
	}
	s.recvWin -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.creditLocked(s, pad)
	}
	s.received += int64(len(data))
	if s.contentLength >= 0 && s.received > s.contentLength {
		c.creditLocked(nil, int64(len(data)))
		c.streamErrorLocked(s.id, http2.ErrCodeProtocol)
		return nil
	}
	if s.handlerDone {
		c.creditLocked(nil, int64(len(data)))
	} else if len(data) > 0 {
		if s.inOff == len(s.in) {
			s.in, s.inOff = s.in[:0], 0
		}
		s.in = append(s.in, data...)
		s.cond.Broadcast()
	}
	if f.StreamEnded() {
		c.endRequestLocked(s)
	}
	return nil
}

// endRequestLocked records END_STREAM from the client on s.
func (c *serverConn) endRequestLocked(s *Stream) {
	if s.contentLength >= 0 && s.received != s.contentLength {
		c.streamErrorLocked(s.id, http2.ErrCodeProtocol)
		return
	}
	s.recvClosed = true
	s.cond.Broadcast()
	if s.sendClosed {
		c.closeStreamLocked(s, nil)
	}
}

// creditLocked gives back n bytes of receive window the client used, on the connection and,
// when s is not nil and may still receive, on s. WINDOW_UPDATE frames go out once half a
// window is owed, not for every frame.
func (c *serverConn) creditLocked(s *Stream, n int64) {
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.cfg.ConnWindowSize)/2 {
		c.ctrls = append(c.ctrls, ctrl{kind: ctrlWindowUpdate, n: uint32(c.recvUnacked)})
		c.recvWin += c.recvUnacked
		c.recvUnacked = 0
		c.wakeWriter()
	}
	if s == nil || s.recvClosed || s.closed {
		return
	}
	s.recvUnacked += n
	if s.recvUnacked >= int64(c.cfg.InitialWindowSize)/2 {
		c.ctrls = append(c.ctrls, ctrl{kind: ctrlWindowUpdate, stream: s.id, n: uint32(s.recvUnacked)})
		s.recvWin += s.recvUnacked
		s.recvUnacked = 0
		c.wakeWriter()
	}
}

// streamError resets stream id with code.
func (c *serverConn) streamError(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	c.streamErrorLocked(id, code)
	c.mu.Unlock()
}

func (c *serverConn) streamErrorLocked(id uint32, code http2.ErrCode) {
	c.ctrls = append(c.ctrls, ctrl{kind: ctrlRST, stream: id, code: code})
	c.wakeWriter()
	if s := c.streams[id]; s != nil {
		c.closeStreamLocked(s, StreamError{Code: code})
	}
}

// closeStreamLocked closes s with err (nil: it completed): it leaves the stream table, its
// handler's reads, writes and Done see err, and the request body nobody will read gives its
// connection window back.
func (c *serverConn) closeStreamLocked(s *Stream, err error) {
	if s.closed {
		return
	}
	s.closed = true
	if err != nil {
		s.err = err
		s.dead.Store(true)
	}
	delete(c.streams, s.id)
	if rest := int64(len(s.in) - s.inOff); rest > 0 {
		s.in, s.inOff = s.in[:0], 0
		c.creditLocked(nil, rest)
	}
	s.cond.Broadcast()
	if err != nil {
		if s.done != nil {
			close(s.done)
		}
		if s.cancel != nil {
			s.cancel()
		}
	}
	if len(c.streams) == 0 && c.handlers == 0 {
		c.idleSince = time.Now()
	}
	c.checkDrainedLocked()
	c.unrefLocked(s)
}
