package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// procCPU returns a process's CPU time (user + system), in seconds, from
// /proc/<pid>/stat; withChildren adds its waited-for children's.
func procCPU(proc string, pid int, withChildren bool) (float64, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data), withChildren)
}

// parseStatCPU reads utime and stime (fields 14, 15) and, withChildren,
// cutime and cstime (16, 17) of a /proc/<pid>/stat line. The command name
// (field 2) is in parentheses and may itself contain spaces and parentheses.
func parseStatCPU(stat string, withChildren bool) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 15 {
		return 0, errors.New("stat: too few fields")
	}
	last := 12
	if withChildren {
		last = 14
	}
	var ticks int64
	for j := 11; j <= last; j++ {
		n, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %d: %w", j+3, err)
		}
		ticks += n
	}
	return float64(ticks) / clockTicks, nil
}

// procRSSKiB returns a process's resident set (VmRSS) in KiB.
func procRSSKiB(proc string, pid int) (int64, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusField(f, "VmRSS:")
}

// parseStatusField reads a "Name:   123 kB" line of /proc/<pid>/status.
func parseStatusField(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("status: no %s line", name)
}

// procFileLimit returns a process's soft RLIMIT_NOFILE from /proc/<pid>/limits.
func procFileLimit(proc string, pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "limits"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("limits: no Max open files line")
}

// commCPU sums the CPU time of every process whose command name (comm) is
// name, including their waited-for children's: PostgreSQL's backends are
// children of the postmaster, so the time of backends that have exited is
// still counted (in the postmaster's cutime/cstime).
func commCPU(proc, name string) (float64, int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, 0, err
	}
	var sum float64
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		s, err := procCPU(proc, pid, true)
		if err != nil {
			continue // it ended meanwhile
		}
		sum += s
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("no process named %s in %s", name, proc)
	}
	return sum, n, nil
}

// metricsClient scrapes chatd's /metrics.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// scrape reads the Prometheus text exposition at url: series (name with its
// labels, as written) → value.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexByte(line, ' ')
		if b := strings.IndexByte(line, '{'); b >= 0 && (end < 0 || b < end) {
			c := strings.LastIndexByte(line, '}')
			if c < 0 {
				continue
			}
			end = c + 1
		}
		if end <= 0 || end >= len(line) {
			continue
		}
		f := strings.Fields(line[end:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[line[:end]] = v
	}
	return out, sc.Err()
}

// serverSample is the server's state at one moment. Zero means unknown for
// every field but Connections, which is nil when unknown.
type serverSample struct {
	At           float64 `json:"at_s"` // seconds since the run began
	RSSKiB       int64   `json:"rss_kib,omitempty"`
	Goroutines   int64   `json:"goroutines,omitempty"`
	HeapInuseKiB int64   `json:"heap_inuse_kib,omitempty"`
	HeapGoalKiB  int64   `json:"heap_goal_kib,omitempty"`   // go_memstats_next_gc_bytes: about twice the heap live at the last GC (GOGC=100)
	HeapAllocKiB int64   `json:"heap_alloc_kib,omitempty"`  // go_memstats_heap_alloc_bytes: live objects right after a GC (--force-gc), plus garbage otherwise
	StackKiB     int64   `json:"stack_inuse_kib,omitempty"` // go_memstats_stack_inuse_bytes: goroutine stacks
	GCs          int64   `json:"gcs,omitempty"`             // garbage collections so far
	Connections  *int64  `json:"connections,omitempty"`
	Stored       *int64  `json:"-"` // grainchat_messages_stored_total
	CPUSeconds   float64 `json:"-"` // process_cpu_seconds_total
}

// sampleServer reads what it can: RSS from /proc when --server-pid is
// given, the rest from --metrics-url. Failures become warnings.
func (b *bench) sampleServer(ctx context.Context, t0 time.Time) serverSample {
	s := serverSample{At: time.Since(t0).Seconds()}
	if b.o.metricsURL != "" {
		m, err := scrape(ctx, b.o.metricsURL)
		if err != nil {
			b.warn("metrics: %v", err)
		} else {
			s.Goroutines = int64(m["go_goroutines"])
			s.HeapInuseKiB = int64(m["go_memstats_heap_inuse_bytes"]) >> 10
			s.HeapGoalKiB = int64(m["go_memstats_next_gc_bytes"]) >> 10
			s.HeapAllocKiB = int64(m["go_memstats_heap_alloc_bytes"]) >> 10
			s.StackKiB = int64(m["go_memstats_stack_inuse_bytes"]) >> 10
			s.GCs = int64(m["go_gc_duration_seconds_count"])
			s.RSSKiB = int64(m["process_resident_memory_bytes"]) >> 10
			s.CPUSeconds = m["process_cpu_seconds_total"]
			if v, ok := m["grainchat_connections"]; ok {
				n := int64(v)
				s.Connections = &n
			}
			if v, ok := m["grainchat_messages_stored_total"]; ok {
				n := int64(v)
				s.Stored = &n
			}
		}
	}
	if b.o.serverPID > 0 {
		rss, err := procRSSKiB("/proc", b.o.serverPID)
		if err != nil {
			b.warn("server RSS: %v", err)
		} else {
			// The server's own figure, when there is one, must agree.
			if own := s.RSSKiB; own > 0 && (rss*3 < own*2 || own*3 < rss*2) {
				b.warn("--server-pid %d has %d KiB resident but the server at --url reports %d KiB: is it the server's pid?", b.o.serverPID, rss, own)
			}
			s.RSSKiB = rss
		}
	}
	return s
}

// collectGarbage has the server run a garbage collection (--force-gc) by
// asking for its heap profile with gc=1, so that the next sample's heap is
// live data.
func (b *bench) collectGarbage(ctx context.Context) {
	if !b.o.forceGC {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.o.gcURL, nil)
	if err != nil {
		b.warn("force a GC: %v", err)
		return
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		b.warn("force a GC: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.warn("force a GC: GET %s: %s (does chatd run with --pprof?)", b.o.gcURL, resp.Status)
	}
}

// sampler samples the server every --sample-every until stopped.
type sampler struct {
	b       *bench
	t0      time.Time
	mu      sync.Mutex
	samples []serverSample
	stopc   chan struct{}
	done    chan struct{}
}

// startSampler takes a first sample, synchronously, then one every
// --sample-every.
func (b *bench) startSampler(ctx context.Context) *sampler {
	s := &sampler{b: b, t0: time.Now(), stopc: make(chan struct{}), done: make(chan struct{})}
	s.takeAfterGC(ctx)
	go func() {
		defer close(s.done)
		t := time.NewTicker(b.o.sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.take(ctx)
			case <-s.stopc:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// take samples now and keeps the sample.
func (s *sampler) take(ctx context.Context) serverSample {
	x := s.b.sampleServer(ctx, s.t0)
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
	return x
}

// first is the first sample, taken by startSampler.
func (s *sampler) first() serverSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples[0]
}

// takeAfterGC is take after a garbage collection, with --force-gc.
func (s *sampler) takeAfterGC(ctx context.Context) serverSample {
	s.b.collectGarbage(ctx)
	return s.take(ctx)
}

// stop ends the periodic sampling and returns every sample.
func (s *sampler) stop() []serverSample {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]serverSample(nil), s.samples...)
}

// peak is the largest value of each field over samples.
func peak(samples []serverSample) serverSample {
	var p serverSample
	for _, s := range samples {
		p.RSSKiB = max(p.RSSKiB, s.RSSKiB)
		p.Goroutines = max(p.Goroutines, s.Goroutines)
		p.HeapInuseKiB = max(p.HeapInuseKiB, s.HeapInuseKiB)
		p.HeapGoalKiB = max(p.HeapGoalKiB, s.HeapGoalKiB)
		p.GCs = max(p.GCs, s.GCs)
		if s.Connections != nil && (p.Connections == nil || *s.Connections > *p.Connections) {
			n := *s.Connections
			p.Connections = &n
		}
	}
	return p
}

// cpuSnapshot is the CPU time consumed so far by the server, PostgreSQL and
// chatbench; a negative value is unknown.
type cpuSnapshot struct {
	at                     time.Time
	server, postgres, self float64
	serverSource           string
	stored                 *int64
}

func (b *bench) cpuNow(ctx context.Context) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), server: -1, postgres: -1, self: -1}
	if v, err := procCPU("/proc", os.Getpid(), false); err == nil {
		s.self = v
	}
	var m serverSample
	if b.o.metricsURL != "" {
		m = b.sampleServer(ctx, s.at)
		s.stored = m.Stored
	}
	if b.o.serverPID > 0 {
		if v, err := procCPU("/proc", b.o.serverPID, false); err == nil {
			s.server, s.serverSource = v, "/proc"
		} else {
			b.warn("server CPU: %v", err)
		}
	} else if m.CPUSeconds > 0 {
		s.server, s.serverSource = m.CPUSeconds, "metrics"
	}
	if b.o.postgresCPU {
		if v, _, err := commCPU("/proc", "postgres"); err == nil {
			s.postgres = v
		} else {
			b.warn("PostgreSQL CPU: %v", err)
		}
	}
	return s
}

// cpuReport is the CPU time spent between two snapshots.
type cpuReport struct {
	WallSeconds float64    `json:"wall_s"`
	Messages    int64      `json:"messages,omitempty"` // stored in the interval
	Conns       int64      `json:"conns,omitempty"`    // opened in the interval
	Server      *cpuFigure `json:"server,omitempty"`
	Postgres    *cpuFigure `json:"postgres,omitempty"`
	Bench       *cpuFigure `json:"chatbench,omitempty"`
}

type cpuFigure struct {
	Seconds         float64 `json:"cpu_s"`
	Cores           float64 `json:"cores"` // CPU seconds per wall second
	Per1000Messages float64 `json:"cpu_s_per_1000_messages,omitempty"`
	Per1000Conns    float64 `json:"cpu_s_per_1000_conns,omitempty"`
	Source          string  `json:"source,omitempty"`
}

func cpuBetween(a, z cpuSnapshot, messages, conns int64) *cpuReport {
	wall := z.at.Sub(a.at).Seconds()
	r := &cpuReport{WallSeconds: wall, Messages: messages, Conns: conns}
	fig := func(x, y float64, source string) *cpuFigure {
		if x < 0 || y < 0 {
			return nil
		}
		f := &cpuFigure{Seconds: y - x, Source: source}
		if wall > 0 {
			f.Cores = f.Seconds / wall
		}
		if messages > 0 {
			f.Per1000Messages = f.Seconds / float64(messages) * 1000
		}
		if conns > 0 {
			f.Per1000Conns = f.Seconds / float64(conns) * 1000
		}
		return f
	}
	r.Server = fig(a.server, z.server, z.serverSource)
	r.Postgres = fig(a.postgres, z.postgres, "")
	r.Bench = fig(a.self, z.self, "")
	return r
}
