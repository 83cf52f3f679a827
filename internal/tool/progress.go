package tool

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: long commands draw a progress
// bar there, and write periodic log lines anywhere else (CI logs, files).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBars draws one progress bar per phase of a long command on a
// terminal, with rate and ETA. Its Update method has the shape of the
// builder's and publisher's progress callbacks.
type progressBars struct {
	w     io.Writer
	mu    sync.Mutex
	phase string
	bar   *progressbar.ProgressBar
	// describe names a phase and says whether it counts bytes.
	describe func(phase string) (label string, bytes bool)
}

func newProgressBars(w io.Writer, describe func(phase string) (string, bool)) *progressBars {
	return &progressBars{w: w, describe: describe}
}

// Update moves the bar of phase to done of total, starting a new bar when
// the phase changes.
func (p *progressBars) Update(phase string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || phase != p.phase {
		p.finishLocked()
		label, bytes := p.describe(phase)
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { io.WriteString(p.w, "\n") }),
		}
		if bytes {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("parts"))
		}
		p.phase = phase
		p.bar = progressbar.NewOptions64(total, opts...)
	}
	if total > 0 && total != p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(done)
}

// Finish completes the last bar.
func (p *progressBars) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *progressBars) finishLocked() {
	if p.bar != nil && !p.bar.IsFinished() {
		p.bar.Finish()
	}
	p.bar = nil
}
