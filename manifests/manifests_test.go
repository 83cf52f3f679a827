// Package manifests holds batchkv's Kubernetes manifests (a kustomize base,
// components and overlays). This test renders every kustomization with the
// kustomize Go API, decodes every object strictly into the Kubernetes API
// types, and checks what the docs promise: the native sidecar, the shared
// volume, probes, ports, settings the binaries accept, the restricted Pod
// Security Standard, the grace period, and alerts on metrics that exist.
package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/batchkv/batchkv/internal/cluster"
	"github.com/batchkv/batchkv/internal/metrics"
	"github.com/batchkv/batchkv/internal/server"
	"github.com/batchkv/batchkv/internal/syncer"
)

// The ports the binaries listen on in a pod (docs/OPERATIONS.md).
const (
	redisPort         = 6379
	serverMetricsPort = 9121
	syncerMetricsPort = 9122
)

// rendered is one kustomization's output, objects decoded by kind.
type rendered struct {
	dir             string
	deployments     []appsv1.Deployment
	statefulSets    []appsv1.StatefulSet
	services        []corev1.Service
	pdbs            []policyv1.PodDisruptionBudget
	configMaps      map[string]corev1.ConfigMap
	secrets         map[string]corev1.Secret
	serviceAccounts []corev1.ServiceAccount
	rules           []prometheusRule
	monitors        []serviceMonitor
}

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule the
// manifests use; decoding is strict, so a misspelt field fails.
type prometheusRule struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   map[string]any     `json:"metadata"`
	Spec       prometheusRuleSpec `json:"spec"`
}

type prometheusRuleSpec struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

type serviceMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kustomizations lists the directories under manifests/ holding a
// kustomization.yaml, split into those to render and components (which are
// rendered through the overlays that use them).
func kustomizations(t *testing.T) (dirs, components []string) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(b, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if head.Kind == "Component" {
			components = append(components, filepath.Dir(path))
		} else {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, "base") || !slices.Contains(dirs, filepath.Join("overlays", "dev")) {
		t.Fatalf("kustomizations %v: want base and overlays/dev among them", dirs)
	}
	return dirs, components
}

// decodeStrict decodes JSON into v, failing on fields v does not have.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

func render(t *testing.T, dir string) *rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := &rendered{dir: dir, configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		var into any
		switch gvk := r.GetGvk(); gvk.Group + "/" + gvk.Version + "/" + gvk.Kind {
		case "apps/v1/Deployment":
			out.deployments = append(out.deployments, appsv1.Deployment{})
			into = &out.deployments[len(out.deployments)-1]
		case "apps/v1/StatefulSet":
			out.statefulSets = append(out.statefulSets, appsv1.StatefulSet{})
			into = &out.statefulSets[len(out.statefulSets)-1]
		case "/v1/Service":
			out.services = append(out.services, corev1.Service{})
			into = &out.services[len(out.services)-1]
		case "/v1/ServiceAccount":
			out.serviceAccounts = append(out.serviceAccounts, corev1.ServiceAccount{})
			into = &out.serviceAccounts[len(out.serviceAccounts)-1]
		case "policy/v1/PodDisruptionBudget":
			out.pdbs = append(out.pdbs, policyv1.PodDisruptionBudget{})
			into = &out.pdbs[len(out.pdbs)-1]
		case "/v1/ConfigMap":
			var cm corev1.ConfigMap
			if err := decodeStrict(b, &cm); err != nil {
				t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
			}
			out.configMaps[cm.Name] = cm
			continue
		case "/v1/Secret":
			var s corev1.Secret
			if err := decodeStrict(b, &s); err != nil {
				t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
			}
			out.secrets[s.Name] = s
			continue
		case "monitoring.coreos.com/v1/PrometheusRule":
			out.rules = append(out.rules, prometheusRule{})
			into = &out.rules[len(out.rules)-1]
		case "monitoring.coreos.com/v1/ServiceMonitor":
			out.monitors = append(out.monitors, serviceMonitor{})
			into = &out.monitors[len(out.monitors)-1]
		default:
			t.Fatalf("%s: %s: a kind this test does not know: add its checks", dir, r.CurId())
		}
		if err := decodeStrict(b, into); err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
	}
	return out
}

func TestKustomizations(t *testing.T) {
	dirs, components := kustomizations(t)
	used := map[string]bool{}
	for _, dir := range dirs {
		t.Run(filepath.ToSlash(dir), func(t *testing.T) {
			r := render(t, dir)
			checkRendered(t, r)
		})
		b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			Components []string `json:"components"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Fatal(err)
		}
		for _, c := range k.Components {
			used[filepath.Clean(filepath.Join(dir, c))] = true
		}
	}
	for _, c := range components {
		if !used[c] {
			t.Errorf("component %s is used by no kustomization, so this test never renders it", c)
		}
	}
}

func checkRendered(t *testing.T, r *rendered) {
	if len(r.deployments)+len(r.statefulSets) != 1 || len(r.pdbs) != 1 || len(r.serviceAccounts) != 1 || len(r.rules) != 1 {
		t.Fatalf("want one Deployment or StatefulSet, PodDisruptionBudget, ServiceAccount and PrometheusRule; got %d+%d, %d, %d, %d",
			len(r.deployments), len(r.statefulSets), len(r.pdbs), len(r.serviceAccounts), len(r.rules))
	}
	var tmpl corev1.PodTemplateSpec
	var selector *metav1.LabelSelector
	if len(r.deployments) == 1 {
		d := r.deployments[0]
		tmpl, selector = d.Spec.Template, d.Spec.Selector
		// Rollout never lowers capacity.
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("rolling update: want maxUnavailable 0 (a new pod needs a full download before it serves)")
		}
	} else {
		tmpl, selector = r.statefulSets[0].Spec.Template, r.statefulSets[0].Spec.Selector
	}
	pod := tmpl.Spec
	for _, v := range restrictedViolations(pod) {
		t.Error(v)
	}

	// The syncer: a native sidecar.
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != "syncer" {
		t.Fatalf("initContainers: want exactly the syncer, got %d", len(pod.InitContainers))
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "server" {
		t.Fatalf("containers: want exactly the server, got %d", len(pod.Containers))
	}
	sync, srv := pod.InitContainers[0], pod.Containers[0]
	if sync.RestartPolicy == nil || *sync.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("syncer: restartPolicy must be Always (a native sidecar)")
	}
	if sync.Image != "ghcr.io/batchkv/batchkv-syncer" && !strings.HasPrefix(sync.Image, "ghcr.io/batchkv/batchkv-syncer:") {
		t.Errorf("syncer image %q: the kustomize images: entry did not apply", sync.Image)
	}
	if !strings.HasPrefix(srv.Image, "ghcr.io/batchkv/batchkv-server:") {
		t.Errorf("server image %q: the kustomize images: entry did not apply", srv.Image)
	}
	srvEnv := envOf(t, r, srv)
	syncEnv := envOf(t, r, sync)
	checkFlags(t, "server", srvEnv, helpEnv(t, "server"))
	checkFlags(t, "syncer", syncEnv, helpEnv(t, "syncer"))
	checkValues(t, "server", srvEnv)
	checkValues(t, "syncer", syncEnv)

	// Ports: the listen addresses, the container ports and the probes agree.
	checkListen(t, "server BATCHKV_ADDR", srvEnv["BATCHKV_ADDR"], redisPort)
	checkListen(t, "server BATCHKV_METRICS_ADDR", srvEnv["BATCHKV_METRICS_ADDR"], serverMetricsPort)
	checkListen(t, "syncer BATCHKV_METRICS_ADDR", syncEnv["BATCHKV_METRICS_ADDR"], syncerMetricsPort)
	wantPorts(t, srv, map[string]int32{"redis": redisPort, "metrics": serverMetricsPort})
	wantPorts(t, sync, map[string]int32{"syncer-metrics": syncerMetricsPort})
	checkProbe(t, "syncer startupProbe", sync, sync.StartupProbe, "/readyz", syncerMetricsPort)
	checkProbe(t, "syncer livenessProbe", sync, sync.LivenessProbe, "/healthz", syncerMetricsPort)
	checkProbe(t, "server startupProbe", srv, srv.StartupProbe, "/readyz", serverMetricsPort)
	checkProbe(t, "server readinessProbe", srv, srv.ReadinessProbe, "/readyz", serverMetricsPort)
	checkProbe(t, "server livenessProbe", srv, srv.LivenessProbe, "/healthz", serverMetricsPort)
	if sync.ReadinessProbe != nil {
		// A sidecar's readiness counts for the pod's: a syncer failing to
		// reach S3 must not take a serving pod out of the Service.
		t.Errorf("syncer: no readinessProbe wanted (it would couple serving to S3)")
	}
	if p := sync.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < 30*time.Minute {
		t.Errorf("syncer startupProbe allows %ds for the first download: want at least 30 minutes", p.PeriodSeconds*p.FailureThreshold)
	}

	// The shared volume: mounted at one path in both, that path is --root.
	var claims []corev1.PersistentVolumeClaim
	if len(r.statefulSets) == 1 {
		claims = r.statefulSets[0].Spec.VolumeClaimTemplates
	}
	vol := sharedVolume(t, pod, claims)
	srvPath, syncPath := mountPath(t, srv, vol), mountPath(t, sync, vol)
	if srvPath != syncPath {
		t.Errorf("volume %s mounted at %q in the server and %q in the syncer: want one path", vol, srvPath, syncPath)
	}
	if srvEnv["BATCHKV_ROOT"] != srvPath || syncEnv["BATCHKV_ROOT"] != syncPath {
		t.Errorf("BATCHKV_ROOT server %q syncer %q: want the mount path %q", srvEnv["BATCHKV_ROOT"], syncEnv["BATCHKV_ROOT"], srvPath)
	}
	for _, c := range []corev1.Container{srv, sync} {
		for _, m := range c.VolumeMounts {
			if m.Name == vol && m.ReadOnly {
				t.Errorf("%s: the shared volume must be writable (Pebble creates db/LOCK even read-only)", c.Name)
			}
		}
	}
	// One user and group for both, and fsGroup: the server writes db/LOCK in
	// directories the syncer created.
	sc := pod.SecurityContext
	if sc.RunAsUser == nil || sc.RunAsGroup == nil || sc.FSGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
		t.Errorf("pod securityContext: want runAsUser, runAsGroup and fsGroup == runAsGroup")
	}
	for _, c := range []corev1.Container{srv, sync} {
		if c.SecurityContext.RunAsUser != nil || c.SecurityContext.RunAsGroup != nil {
			t.Errorf("%s: the user and group are the pod's, shared by both containers; do not set them per container", c.Name)
		}
	}

	// Resources: memory bounded; the server's limit covers the block cache.
	for _, c := range []corev1.Container{srv, sync} {
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit", c.Name)
		}
	}
	cache, err := strconv.ParseInt(srvEnv["BATCHKV_CACHE_BYTES"], 10, 64)
	if err != nil {
		t.Errorf("server BATCHKV_CACHE_BYTES %q: %v", srvEnv["BATCHKV_CACHE_BYTES"], err)
	} else if limit := srv.Resources.Limits.Memory().Value(); limit < cache+cache/4 || limit < cache+128<<20 {
		t.Errorf("server memory limit %d for a %d-byte cache: want cache plus at least max(25%%, 128 MiB) headroom", limit, cache)
	}

	// Kubernetes injects BATCHKV_SERVICE_HOST, BATCHKV_PORT_6379_TCP… for a
	// Service named batchkv: the flags' prefix. Keep them out.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Errorf("enableServiceLinks must be false: Service variables share the BATCHKV_ prefix of the flags")
	}

	// Graceful shutdown: the drain and the shutdown fit the grace period.
	drain, err := time.ParseDuration(srvEnv["BATCHKV_SHUTDOWN_DRAIN"])
	if err != nil {
		t.Errorf("server BATCHKV_SHUTDOWN_DRAIN %q: %v", srvEnv["BATCHKV_SHUTDOWN_DRAIN"], err)
	}
	var grace time.Duration
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= drain+server.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %v: want more than the drain %v plus the shutdown %v", grace, drain, server.ShutdownTimeout)
	}

	// Selectors select the pods.
	podLabels := labels.Set(tmpl.Labels)
	if selector == nil || !labels.SelectorFromSet(selector.MatchLabels).Matches(podLabels) {
		t.Errorf("workload selector does not select its pods")
	}
	pdb := r.pdbs[0]
	if pdb.Spec.Selector == nil || len(pdb.Spec.Selector.MatchLabels) == 0 || !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector does not select the pods")
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Errorf("PodDisruptionBudget: no budget")
	}

	// The Service: the redis and both metrics ports, by name, onto container ports.
	svc := clientService(t, r)
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector does not select the pods")
	}
	wantSvc := map[string]int32{"redis": redisPort, "metrics": serverMetricsPort, "syncer-metrics": syncerMetricsPort}
	for _, p := range svc.Spec.Ports {
		want, ok := wantSvc[p.Name]
		if !ok {
			t.Errorf("Service port %q: unexpected", p.Name)
			continue
		}
		delete(wantSvc, p.Name)
		if p.Port != want || p.TargetPort != intstr.FromString(p.Name) {
			t.Errorf("Service port %s: %d → %v, want %d → the container port named %s", p.Name, p.Port, p.TargetPort.String(), want, p.Name)
		}
	}
	if len(wantSvc) > 0 {
		t.Errorf("Service: ports missing: %v", wantSvc)
	}

	// The ServiceAccount: used by the pod; IRSA annotated unless the overlay
	// uses static credentials.
	sa := r.serviceAccounts[0]
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("pod serviceAccountName %q, ServiceAccount %q", pod.ServiceAccountName, sa.Name)
	}
	_, irsa := sa.Annotations["eks.amazonaws.com/role-arn"]
	_, static := syncEnv["AWS_ACCESS_KEY_ID"]
	if irsa == static {
		t.Errorf("S3 credentials: want exactly one of the IRSA annotation (%v) and AWS_ACCESS_KEY_ID from a Secret (%v)", irsa, static)
	}
	if strings.HasPrefix(syncEnv["BATCHKV_SOURCE"], "s3://") == false && !strings.HasPrefix(syncEnv["BATCHKV_SOURCE"], "file://") {
		t.Errorf("syncer BATCHKV_SOURCE %q: want s3:// or file://", syncEnv["BATCHKV_SOURCE"])
	}

	if len(r.statefulSets) == 1 {
		checkCluster(t, r, srvEnv, syncEnv)
	}
	checkRules(t, r.rules[0])
	for _, m := range r.monitors {
		if !labels.SelectorFromSet(m.Spec.Selector.MatchLabels).Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", m.Spec.Selector.MatchLabels, svc.Labels)
		}
		var ports []string
		for _, e := range m.Spec.Endpoints {
			ports = append(ports, e.Port)
			if e.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %s: path %q", e.Port, e.Path)
			}
		}
		sort.Strings(ports)
		if !slices.Equal(ports, []string{"metrics", "syncer-metrics"}) {
			t.Errorf("ServiceMonitor endpoints %v: want metrics and syncer-metrics", ports)
		}
	}
}

// envOf resolves a container's environment: envFrom ConfigMaps and Secrets
// of the rendered set (which must exist), then env.
func envOf(t *testing.T, r *rendered, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := r.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("%s: envFrom ConfigMap %q is not in the kustomization", c.Name, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil:
			s, ok := r.secrets[from.SecretRef.Name]
			if !ok {
				t.Fatalf("%s: envFrom Secret %q is not in the kustomization", c.Name, from.SecretRef.Name)
			}
			for k := range s.Data {
				env[k] = "(secret)"
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "(valueFrom)"
		} else {
			env[e.Name] = e.Value
		}
	}
	return env
}

var envInHelp = regexp.MustCompile(`\[\$(BATCHKV_[A-Z0-9_]+)\]`)

// helpEnv returns the BATCHKV_* variables a binary's --help lists: the
// settings it actually reads.
func helpEnv(t *testing.T, bin string) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	var err error
	none := func(string) (string, bool) { return "", false }
	switch bin {
	case "server":
		err = server.Run(context.Background(), []string{"--help"}, &out, none)
	case "syncer":
		err = syncer.Command(context.Background(), []string{"--help"}, &out, none)
	}
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("%s --help: %v", bin, err)
	}
	names := map[string]bool{}
	for _, m := range envInHelp.FindAllStringSubmatch(out.String(), -1) {
		names[m[1]] = true
	}
	if len(names) < 5 {
		t.Fatalf("%s --help lists %d variables: the help format changed?\n%s", bin, len(names), out.String())
	}
	return names
}

// checkFlags fails on a BATCHKV_* setting the binary does not read: a typo
// there is silently ignored in production.
func checkFlags(t *testing.T, bin string, env map[string]string, known map[string]bool) {
	t.Helper()
	for k := range env {
		if !strings.HasPrefix(k, "BATCHKV_") {
			continue
		}
		if !known[k] {
			t.Errorf("%s: setting %s is not a flag of batchkv-%s (see its --help)", bin, k, bin)
		}
	}
}

// checkValues has the binary parse the settings as its environment: a value
// it cannot parse (BATCHKV_PART_SIZE=8MB, BATCHKV_INTERVAL=30) fails here,
// not in a crash-looping pod. Each binary is stopped by a usage error raised
// right after parsing, before it opens or listens on anything.
func checkValues(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var err error
	var want string
	switch bin {
	case "server":
		// --dataset as well as --root: refused just after parsing.
		want = "give exactly one of --root and --dataset"
		err = server.Run(context.Background(), nil, io.Discard, func(k string) (string, bool) {
			if k == "BATCHKV_DATASET" {
				return "/nonexistent", true
			}
			return lookup(k)
		})
	case "syncer":
		// A positional argument: refused just after parsing.
		want = "unexpected arguments"
		err = syncer.Command(context.Background(), []string{"stop-after-parsing"}, io.Discard, lookup)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: the settings do not parse: %v", bin, err)
	}
	if f := env["BATCHKV_LOG_FORMAT"]; f != "" && f != "json" && f != "console" {
		t.Errorf("%s: BATCHKV_LOG_FORMAT %q", bin, f)
	}
}

func checkListen(t *testing.T, what, addr string, port int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s %q: %v", what, addr, err)
		return
	}
	if host != "0.0.0.0" && host != "" {
		t.Errorf("%s %q: in a pod, listen on all interfaces (probes and the Service come from outside the container)", what, addr)
	}
	if p != strconv.Itoa(port) {
		t.Errorf("%s %q: want port %d", what, addr, port)
	}
}

func wantPorts(t *testing.T, c corev1.Container, want map[string]int32) {
	t.Helper()
	got := map[string]int32{}
	for _, p := range c.Ports {
		got[p.Name] = p.ContainerPort
		if p.HostPort != 0 {
			t.Errorf("%s: port %s has a hostPort", c.Name, p.Name)
		}
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: container port %s = %d, want %d", c.Name, name, got[name], n)
		}
	}
}

func checkProbe(t *testing.T, what string, c corev1.Container, p *corev1.Probe, path string, port int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an HTTP probe on %s", what, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: path %q, want %q", what, p.HTTPGet.Path, path)
	}
	got := p.HTTPGet.Port
	if got.Type == intstr.String {
		for _, cp := range c.Ports {
			if cp.Name == got.StrVal {
				got = intstr.FromInt32(cp.ContainerPort)
			}
		}
	}
	if got.Type != intstr.Int || got.IntVal != port {
		t.Errorf("%s: port %s, want %d", what, p.HTTPGet.Port.String(), port)
	}
	if p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1 {
		t.Errorf("%s: set timeoutSeconds, periodSeconds and failureThreshold explicitly", what)
	}
}

// sharedVolume returns the one volume both containers mount: a pod volume,
// or a StatefulSet's volume claim template.
func sharedVolume(t *testing.T, pod corev1.PodSpec, claims []corev1.PersistentVolumeClaim) string {
	t.Helper()
	var names []string
	for _, v := range pod.Volumes {
		names = append(names, v.Name)
	}
	for _, c := range claims {
		names = append(names, c.Name)
	}
	var shared []string
	for _, n := range names {
		if mountPath(nil, pod.Containers[0], n) != "" && mountPath(nil, pod.InitContainers[0], n) != "" {
			shared = append(shared, n)
		}
	}
	if len(shared) != 1 {
		t.Fatalf("volumes mounted in both containers: %v, want one", shared)
	}
	if i := slices.IndexFunc(claims, func(c corev1.PersistentVolumeClaim) bool { return c.Name == shared[0] }); i >= 0 {
		req := claims[i].Spec.Resources.Requests[corev1.ResourceStorage]
		if req.IsZero() {
			t.Errorf("volume claim template %s: needs a storage request", claims[i].Name)
		}
		return claims[i].Name
	}
	v := pod.Volumes[slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == shared[0] })]
	switch {
	case v.EmptyDir != nil:
		if v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero() {
			t.Errorf("volume %s: an emptyDir needs a sizeLimit", v.Name)
		}
	case v.Ephemeral != nil:
		req := v.Ephemeral.VolumeClaimTemplate.Spec.Resources.Requests[corev1.ResourceStorage]
		if req.IsZero() {
			t.Errorf("volume %s: an ephemeral volume needs a storage request", v.Name)
		}
	default:
		t.Errorf("volume %s: want an emptyDir, a generic ephemeral volume or a volume claim template", v.Name)
	}
	return v.Name
}

// checkCluster checks the cluster-mode StatefulSet's wiring: the names the
// server derives its peers from are the StatefulSet's and its headless
// Service's, the pod count is shards × replicas, syncer and server agree on
// the shard count, and a disruption never takes a shard's last replica.
func checkCluster(t *testing.T, r *rendered, srvEnv, syncEnv map[string]string) {
	t.Helper()
	sts := r.statefulSets[0]
	num := func(env map[string]string, k string) int {
		n, err := strconv.Atoi(env[k])
		if err != nil || n < 1 {
			t.Errorf("%s %q: want a positive integer", k, env[k])
		}
		return n
	}
	shards, replicas := num(srvEnv, "BATCHKV_CLUSTER_SHARDS"), num(srvEnv, "BATCHKV_CLUSTER_REPLICAS")
	if got := num(syncEnv, "BATCHKV_SHARDS"); got != shards {
		t.Errorf("syncer BATCHKV_SHARDS %d, server BATCHKV_CLUSTER_SHARDS %d: the syncer would fetch another shard than the server serves", got, shards)
	}
	if sts.Spec.Replicas == nil || int(*sts.Spec.Replicas) != shards*replicas {
		t.Errorf("StatefulSet replicas %d: want shards × replicas = %d", ptrOr(sts.Spec.Replicas, 1), shards*replicas)
	}
	if srvEnv["BATCHKV_CLUSTER_STATEFULSET"] != sts.Name {
		t.Errorf("BATCHKV_CLUSTER_STATEFULSET %q: want the StatefulSet's name %q (pod names are <name>-<ordinal>)", srvEnv["BATCHKV_CLUSTER_STATEFULSET"], sts.Name)
	}
	if srvEnv["BATCHKV_CLUSTER_SERVICE"] != sts.Spec.ServiceName {
		t.Errorf("BATCHKV_CLUSTER_SERVICE %q: want the StatefulSet's serviceName %q", srvEnv["BATCHKV_CLUSTER_SERVICE"], sts.Spec.ServiceName)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: want Parallel (pods download their shards at the same time)", sts.Spec.PodManagementPolicy)
	}
	i := slices.IndexFunc(r.services, func(s corev1.Service) bool { return s.Name == sts.Spec.ServiceName })
	if i < 0 {
		t.Fatalf("StatefulSet serviceName %q: no such Service", sts.Spec.ServiceName)
	}
	hl := r.services[i]
	if hl.Spec.ClusterIP != corev1.ClusterIPNone || !hl.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: want headless with publishNotReadyAddresses (peers' names resolve while they load)", hl.Name)
	}
	if !labels.SelectorFromSet(hl.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("Service %s does not select the pods", hl.Name)
	}
	if len(hl.Spec.Ports) != 1 || hl.Spec.Ports[0].Port != redisPort {
		t.Errorf("Service %s ports %v: want the redis port %d (CLUSTER SLOTS announces it)", hl.Name, hl.Spec.Ports, redisPort)
	}
	srv := sts.Spec.Template.Spec.Containers[0]
	ns := false
	for _, e := range srv.Env {
		if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			ns = true
		}
	}
	if !ns {
		t.Errorf("server: want POD_NAMESPACE from metadata.namespace (the peers' DNS names)")
	}
	// Every pod of the StatefulSet derives a topology from these settings,
	// and all of them the same one: each shard has its replicas, and pod o
	// is an endpoint of shard o mod N.
	if t.Failed() {
		return
	}
	var first string
	for o := range shards * replicas {
		k := cluster.Kubernetes{Shards: shards, Replicas: replicas, StatefulSet: srvEnv["BATCHKV_CLUSTER_STATEFULSET"],
			Service: srvEnv["BATCHKV_CLUSTER_SERVICE"], Namespace: "ns", Port: redisPort, Pod: fmt.Sprintf("%s-%d", sts.Name, o)}
		topo, err := k.Topology()
		if err != nil {
			t.Errorf("pod %s: %v", k.Pod, err)
			continue
		}
		if topo.Self.Shard != o%shards || len(topo.Shards) != shards {
			t.Errorf("pod %s: shard %d of %d, want %d of %d", k.Pod, topo.Self.Shard, len(topo.Shards), o%shards, shards)
		}
		var addrs []string
		for _, sh := range topo.Shards {
			if len(sh.Nodes) != replicas {
				t.Errorf("pod %s: a shard with %d endpoints, want %d", k.Pod, len(sh.Nodes), replicas)
			}
			for _, n := range sh.Nodes {
				addrs = append(addrs, n.Addr())
			}
		}
		if want := fmt.Sprintf(".%s.ns.svc.cluster.local:%d", sts.Spec.ServiceName, redisPort); !strings.HasSuffix(addrs[0], want) {
			t.Errorf("pod %s: endpoint %s: want a name under the headless Service (%s)", k.Pod, addrs[0], want)
		}
		if o == 0 {
			first = strings.Join(addrs, ",")
		} else if got := strings.Join(addrs, ","); got != first {
			t.Errorf("pod %s sees the topology %s, pod 0 sees %s", k.Pod, got, first)
		}
	}

	pdb := r.pdbs[0]
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() >= replicas {
		t.Errorf("PodDisruptionBudget maxUnavailable %v with %d replicas per shard: a disruption could take a whole shard", pdb.Spec.MaxUnavailable, replicas)
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// clientService returns the Service clients use: the one with a cluster IP.
// Only the cluster overlay adds another, the headless one naming the pods.
func clientService(t *testing.T, r *rendered) corev1.Service {
	t.Helper()
	var client []corev1.Service
	for _, s := range r.services {
		if s.Spec.ClusterIP != corev1.ClusterIPNone {
			client = append(client, s)
		}
	}
	if len(client) != 1 || len(r.services)-len(client) != len(r.statefulSets) {
		t.Fatalf("services: want one with a cluster IP, and a headless one per StatefulSet; got %d of %d", len(client), len(r.services))
	}
	return client[0]
}

func mountPath(t *testing.T, c corev1.Container, vol string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == vol {
			return m.MountPath
		}
	}
	if t != nil {
		t.Errorf("%s: does not mount %s", c.Name, vol)
	}
	return ""
}

// restrictedViolations applies the "restricted" Pod Security Standard
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// with the manifests' own stricter rules (read-only root filesystem, seccomp
// and runAsNonRoot on every container too).
func restrictedViolations(pod corev1.PodSpec) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		bad("restricted: hostNetwork/hostPID/hostIPC")
	}
	for _, vol := range pod.Volumes {
		vs := vol.VolumeSource
		if vs.ConfigMap == nil && vs.CSI == nil && vs.DownwardAPI == nil && vs.EmptyDir == nil && vs.Ephemeral == nil &&
			vs.PersistentVolumeClaim == nil && vs.Projected == nil && vs.Secret == nil {
			bad("restricted: volume %s is of a type the restricted policy does not allow", vol.Name)
		}
	}
	sc := pod.SecurityContext
	if sc == nil {
		return append(v, "restricted: no pod securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		bad("restricted: pod runAsNonRoot must be true")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		bad("restricted: pod runAsUser 0")
	}
	if sc.SeccompProfile == nil || (sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost) {
		bad("restricted: pod seccompProfile must be RuntimeDefault or Localhost")
	}
	for _, s := range sc.Sysctls {
		bad("restricted: sysctl %s", s.Name)
	}
	if sc.SELinuxOptions != nil && (sc.SELinuxOptions.User != "" || sc.SELinuxOptions.Role != "") {
		bad("restricted: SELinux user/role set")
	}
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		csc := c.SecurityContext
		if csc == nil {
			bad("%s: no securityContext", c.Name)
			continue
		}
		if csc.Privileged != nil && *csc.Privileged {
			bad("%s: privileged", c.Name)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			bad("%s: allowPrivilegeEscalation must be false", c.Name)
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			bad("%s: readOnlyRootFilesystem must be true", c.Name)
		}
		if csc.RunAsNonRoot == nil || !*csc.RunAsNonRoot {
			bad("%s: runAsNonRoot must be true", c.Name)
		}
		if csc.RunAsUser != nil && *csc.RunAsUser == 0 {
			bad("%s: runAsUser 0", c.Name)
		}
		if csc.SeccompProfile == nil || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("%s: seccompProfile must be RuntimeDefault", c.Name)
		}
		if csc.ProcMount != nil && *csc.ProcMount != corev1.DefaultProcMount {
			bad("%s: procMount", c.Name)
		}
		if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
			bad("%s: capabilities must drop ALL", c.Name)
		} else if len(csc.Capabilities.Add) > 0 {
			bad("%s: capabilities added %v: none needed (ports above 1024)", c.Name, csc.Capabilities.Add)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				bad("%s: hostPort %d", c.Name, p.HostPort)
			}
		}
	}
	return v
}

// knownMetrics are the metrics alerts may use, with their type and labels
// (docs/OPERATIONS.md describes them). TestKnownMetricsExported checks them
// against what the binaries register. Histograms are listed by base name.
var knownMetrics = map[string]struct {
	typ    string
	labels string // variable labels, comma-separated, in registration order
}{
	"batchkv_dataset_version_age_seconds":           {"gauge", ""},
	"batchkv_swap_failures_total":                   {"counter", ""},
	"batchkv_syncer_failures_total":                 {"counter", "kind"},
	"batchkv_syncer_free_disk_bytes":                {"gauge", ""},
	"batchkv_syncer_last_success_timestamp_seconds": {"gauge", ""},
	"batchkv_command_duration_seconds":              {"histogram", "command"},
	"batchkv_connected_clients":                     {"gauge", ""},
	"batchkv_dataset_info":                          {"gauge", "dataset,version"},
	"batchkv_commands_total":                        {"counter", "command"},
	"batchkv_errors_total":                          {"counter", "kind"},
	"batchkv_swaps_total":                           {"counter", ""},
	"batchkv_syncer_downloaded_bytes_total":         {"counter", ""},
}

var metricName = regexp.MustCompile(`\bbatchkv_[a-z0-9_]+`)

// wantAlerts are the alerts docs/OPERATIONS.md promises operators.
var wantAlerts = []string{
	"BatchkvDatasetStale", "BatchkvSwapFailing", "BatchkvSyncFailing",
	"BatchkvDiskNearlyFull", "BatchkvLatencyHigh", "BatchkvSyncerStalled",
}

func checkRules(t *testing.T, pr prometheusRule) {
	t.Helper()
	ops, err := os.ReadFile(filepath.Join("..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatalf("the runbook: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, rule := range g.Rules {
			name := rule.Alert
			if name == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules are not used)", g.Name)
				continue
			}
			seen[name] = true
			if err := checkExpr(rule.Expr); err != nil {
				t.Errorf("%s: expr %q: %v", name, rule.Expr, err)
			}
			if rule.For != "" {
				if _, err := time.ParseDuration(rule.For); err != nil {
					t.Errorf("%s: for %q: %v", name, rule.For, err)
				}
			}
			if s := rule.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", name, s)
			}
			if rule.Annotations["summary"] == "" || rule.Annotations["description"] == "" {
				t.Errorf("%s: want summary and description annotations", name)
			}
			anchor := "#" + strings.ToLower(name)
			if !strings.HasSuffix(rule.Annotations["runbook_url"], "/docs/OPERATIONS.md"+anchor) {
				t.Errorf("%s: runbook_url %q, want …/docs/OPERATIONS.md%s", name, rule.Annotations["runbook_url"], anchor)
			}
			if !bytes.Contains(ops, []byte("\n### "+name+"\n")) {
				t.Errorf("%s: docs/OPERATIONS.md has no section \"### %s\" (the runbook_url's anchor)", name, name)
			}
		}
	}
	for _, a := range wantAlerts {
		if !seen[a] {
			t.Errorf("alert %s missing", a)
		}
	}
}

// checkExpr is a light PromQL check (the Prometheus parser is too large a
// dependency for this): brackets balance, strings close, and every batchkv
// metric named is one the binaries export, with a histogram's suffix only
// where it is a histogram.
func checkExpr(expr string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inStr := rune(0)
	for _, c := range expr {
		switch {
		case inStr != 0:
			if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inStr != 0 || len(stack) > 0 {
		return errors.New("unclosed string or bracket")
	}
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		return errors.New("names no batchkv metric")
	}
	for _, n := range names {
		if knownMetrics[n].typ == "histogram" {
			return fmt.Errorf("%s is a histogram: use _bucket, _sum or _count", n)
		}
		if knownMetrics[n].typ != "" {
			continue
		}
		base, ok := "", false
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, found := strings.CutSuffix(n, suf); found {
				base, ok = b, true
			}
		}
		if !ok || knownMetrics[base].typ != "histogram" {
			return fmt.Errorf("unknown metric %s", n)
		}
	}
	return nil
}

func TestCheckExpr(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum(rate(batchkv_swap_failures_total[5m])) > 0`, true},
		{`histogram_quantile(0.99, sum by (le) (rate(batchkv_command_duration_seconds_bucket[5m])))`, true},
		{`sum(rate(batchkv_swap_failure_total[5m])) > 0`, false}, // misspelt
		{`rate(batchkv_command_duration_seconds[5m])`, false},    // histogram without suffix
		{`rate(batchkv_connected_clients_bucket[5m])`, false},    // not a histogram
		{`sum(rate(batchkv_swap_failures_total[5m]) > 0`, false}, // unbalanced
		{`batchkv_syncer_failures_total{kind="s3)"} > 0`, true},  // bracket in a string
		{`batchkv_syncer_failures_total{kind="s3} > 0`, false},   // unclosed string
		{`up == 0`, false}, // no batchkv metric
	} {
		if err := checkExpr(tc.expr); (err == nil) != tc.ok {
			t.Errorf("checkExpr(%q) = %v, want ok=%v", tc.expr, err, tc.ok)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	var svc corev1.Service
	if err := decodeStrict([]byte(`{"kind":"Service","spec":{"ports":[{"port":6379}]}}`), &svc); err != nil {
		t.Errorf("a valid Service: %v", err)
	}
	if err := decodeStrict([]byte(`{"kind":"Service","spec":{"portz":[]}}`), &svc); err == nil {
		t.Errorf("an unknown field was accepted")
	}
}

// TestRestrictedRejects makes sure restrictedViolations can fail: each mutation
// of the rendered base must be reported.
func TestRestrictedRejects(t *testing.T) {
	base := render(t, "base").deployments[0].Spec.Template.Spec
	for name, mutate := range map[string]func(*corev1.PodSpec){
		"hostNetwork": func(p *corev1.PodSpec) { p.HostNetwork = true },
		"hostPath": func(p *corev1.PodSpec) {
			p.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
		},
		"escalation":        func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil },
		"caps":              func(p *corev1.PodSpec) { p.InitContainers[0].SecurityContext.Capabilities.Drop = nil },
		"seccomp":           func(p *corev1.PodSpec) { p.SecurityContext.SeccompProfile = nil },
		"root":              func(p *corev1.PodSpec) { zero := int64(0); p.SecurityContext.RunAsUser = &zero },
		"writable root fs":  func(p *corev1.PodSpec) { no := false; p.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &no },
		"container seccomp": func(p *corev1.PodSpec) { p.InitContainers[0].SecurityContext.SeccompProfile = nil },
	} {
		pod := *base.DeepCopy()
		mutate(&pod)
		if len(restrictedViolations(pod)) == 0 {
			t.Errorf("restrictedViolations accepted the pod with %s", name)
		}
	}
	if v := restrictedViolations(base); len(v) > 0 {
		t.Errorf("the base violates: %v", v)
	}
}

// descRecorder is a prometheus.Registerer that keeps the descriptions of
// what is registered with it: the metric names and labels the binaries
// export, without running them.
type descRecorder struct{ descs []string }

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	done := make(chan struct{})
	go func() { // owned here: ends when Describe returns and ch closes
		defer close(done)
		for d := range ch {
			r.descs = append(r.descs, d.String())
		}
	}()
	c.Describe(ch)
	close(ch)
	<-done
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

var descString = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// TestKnownMetricsExported registers the server's and the syncer's metrics
// as the binaries do and checks every metric the alerts may use is among
// them, with the labels the alerts group by.
func TestKnownMetricsExported(t *testing.T) {
	var rec descRecorder
	m := metrics.NewServer(&rec)
	m.RegisterState(&rec, metrics.ServerState{})
	metrics.NewSyncer(&rec, []string{"source"}, nil)
	exported := map[string]string{}
	for _, d := range rec.descs {
		sm := descString.FindStringSubmatch(d)
		if sm == nil {
			t.Fatalf("description %s: format changed?", d)
		}
		exported[sm[1]] = strings.ReplaceAll(sm[2], " ", "")
	}
	for name, k := range knownMetrics {
		labels, ok := exported[name]
		if !ok {
			t.Errorf("%s: not exported by the server or the syncer", name)
		} else if labels != k.labels {
			t.Errorf("%s: labels {%s}, the test expects {%s}", name, labels, k.labels)
		}
	}
	if len(exported) < len(knownMetrics) {
		t.Errorf("only %d metrics exported", len(exported))
	}
}

// TestGrafanaDashboard checks the dashboard is valid JSON whose every query
// passes checkExpr (known metrics only) and whose panels do not overlap.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int                      `json:"id"`
			Title   string                   `json:"title"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard %q/%q has %d panels", d.Title, d.UID, len(d.Panels))
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	for i, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, q := range p.Targets {
			if err := checkExpr(q.Expr); err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, q.Expr, err)
			}
			for _, n := range metricName.FindAllString(q.Expr, -1) {
				used[strings.TrimSuffix(n, "_bucket")] = true
			}
		}
		a := p.GridPos
		if a.W < 1 || a.H < 1 || a.X+a.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, a)
		}
		for _, q := range d.Panels[:i] {
			b := q.GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
	}
	for name := range knownMetrics {
		if !used[name] {
			t.Errorf("the dashboard shows no panel of %s", name)
		}
	}
}
