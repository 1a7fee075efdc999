package deploy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// kinds are the manifests deploy/k8s may hold, by apiVersion and kind.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                            func() any { return new(appsv1.Deployment) },
	"v1 Service":                                    func() any { return new(corev1.Service) },
	"v1 ConfigMap":                                  func() any { return new(corev1.ConfigMap) },
	"policy/v1 PodDisruptionBudget":                 func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler":        func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"kustomize.config.k8s.io/v1beta1 Kustomization": func() any { return new(kustomization) },
}

// kustomization is the part of kustomize's file deploy/k8s uses.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Resources       []string `json:"resources"`
}

// decodeManifest decodes one YAML document strictly (unknown and duplicate
// fields are errors) into the k8s.io/api type its apiVersion and kind name.
func decodeManifest(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected apiVersion/kind %q %q", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// splitDocs splits a YAML stream at its `---` lines.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// manifests are the decoded objects of deploy/k8s.
type manifests struct {
	files       []string
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	kustomize   *kustomization
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	var m manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			obj, err := decodeManifest(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
				continue
			}
			if om, ok := obj.(interface{ GetName() string }); ok {
				if errs := validation.IsDNS1123Subdomain(om.GetName()); len(errs) > 0 {
					t.Errorf("%s: name %q: %v", f, om.GetName(), errs)
				}
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
			case *corev1.Service:
				m.services = append(m.services, o)
			case *corev1.ConfigMap:
				m.configMaps = append(m.configMaps, o)
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.hpas = append(m.hpas, o)
			case *kustomization:
				m.kustomize = o
				continue
			}
			m.files = append(m.files, filepath.Base(f))
		}
	}
	return m
}

// secretEnv matches the names of environment variables that hold secrets:
// they must come from a Secret, never a literal.
var secretEnv = regexp.MustCompile(`(?i)(PASSWORD|SECRET|MASTER_KEY|TOKEN|POSTGRES_URL|REDIS_URL|NATS_URL|SMTP_URL|SMS_URL)`)

// checkDeployment lists how d breaks the rules of an edge deployment.
func checkDeployment(d *appsv1.Deployment, caddyfile string) []string {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		add("replicas: want at least 3")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		add("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		add("pod securityContext.runAsNonRoot: want true")
	}
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser == 0 {
		add("pod securityContext.runAsUser: 0 is root")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if len(pod.Containers) == 0 {
		add("no containers")
	}
	for _, c := range pod.Containers {
		where := "container " + c.Name
		if err := checkImage(c.Image); err != nil {
			add("%s: %v", where, err)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		probe := func(name string, p *corev1.Probe, path string) {
			switch {
			case p == nil || p.HTTPGet == nil:
				add("%s: %s: want an httpGet probe on %s", where, name, path)
			case p.HTTPGet.Path != path:
				add("%s: %s on %q, want %s", where, name, p.HTTPGet.Path, path)
			case !portExists(p.HTTPGet.Port, ports):
				add("%s: %s: port %s is none of the container's", where, name, p.HTTPGet.Port.String())
			}
		}
		probe("livenessProbe", c.LivenessProbe, "/health/live")
		probe("readinessProbe", c.ReadinessProbe, "/health/ready")
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
				add("%s: resources.requests.%s: want set", where, r)
			}
		}
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
			add("%s: resources.limits.memory: want set", where)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add("%s: securityContext.readOnlyRootFilesystem: want true", where)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("%s: securityContext.allowPrivilegeEscalation: want false", where)
		}
		if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			add("%s: securityContext.runAsUser: 0 is root", where)
		}
		mounts := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = true
			if _, ok := volumes[vm.Name]; !ok {
				add("%s: volumeMount %s: no such volume", where, vm.Name)
			}
		}
		// what a read-only root file system needs writable
		for _, dir := range []string{"/data", "/config", "/tmp"} {
			if !mounts[dir] {
				add("%s: %s must be a volume (the root file system is read-only)", where, dir)
			}
		}
		for _, e := range c.Env {
			if secretEnv.MatchString(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				add("%s: env %s holds a secret: want valueFrom.secretKeyRef, not a value", where, e.Name)
			}
			if strings.HasPrefix(e.Name, "ERP_") && !strings.Contains(caddyfile, e.Name) {
				add("%s: env %s: deploy/Caddyfile reads no such knob", where, e.Name)
			}
		}
	}
	return errs
}

func portExists(p intstr.IntOrString, ports map[string]int32) bool {
	if p.Type == intstr.String {
		_, ok := ports[p.StrVal]
		return ok
	}
	for _, n := range ports {
		if n == p.IntVal {
			return true
		}
	}
	return false
}

// checkImage wants an image pinned by tag (not latest) or digest.
func checkImage(image string) error {
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case image == "":
		return fmt.Errorf("no image")
	case !ok || tag == "":
		return fmt.Errorf("image %q has no tag (that is :latest)", image)
	case tag == "latest":
		return fmt.Errorf("image %q: pin a version, not :latest", image)
	}
	return nil
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var update = flag.Bool("update", false, "write deploy/k8s/configmap.yaml from deploy/Caddyfile")

func TestKubernetesManifests(t *testing.T) {
	if *update {
		writeConfigMap(t)
	}
	caddyfile := readFile(t, "Caddyfile")
	m := loadManifests(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.pdbs) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("want one Deployment, Service, PodDisruptionBudget and ConfigMap; got %d, %d, %d, %d",
			len(m.deployments), len(m.services), len(m.pdbs), len(m.configMaps))
	}
	d := m.deployments[0]
	for _, e := range checkDeployment(d, caddyfile) {
		t.Errorf("Deployment %s: %s", d.Name, e)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	replicas := *d.Spec.Replicas

	// the PDB covers exactly the Deployment's pods and lets some serve
	pdb := m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget %s: selector %v does not select the Deployment's pods %v (%v)", pdb.Name, pdb.Spec.Selector, podLabels, err)
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.Type == intstr.Int:
		if n := pdb.Spec.MaxUnavailable.IntVal; n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget: maxUnavailable %d of %d replicas", n, replicas)
		}
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		if n := pdb.Spec.MinAvailable.IntVal; n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget: minAvailable %d of %d replicas", n, replicas)
		}
	default:
		t.Errorf("PodDisruptionBudget: want maxUnavailable or minAvailable as a number")
	}

	// the Service reaches the pods on ports they have
	svc := m.services[0]
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %s: selector %v does not select the Deployment's pods %v", svc.Name, svc.Spec.Selector, podLabels)
	}
	ports := map[string]int32{}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
	}
	for _, p := range svc.Spec.Ports {
		if !portExists(p.TargetPort, ports) {
			t.Errorf("Service %s: targetPort %s is no container port", svc.Name, p.TargetPort.String())
		}
	}

	// the ConfigMap carries deploy/Caddyfile as it is, mounted where the
	// container's args read it
	cm := m.configMaps[0]
	if cm.Data["Caddyfile"] != caddyfile {
		t.Errorf("ConfigMap %s: data.Caddyfile differs from deploy/Caddyfile (go test ./deploy -run TestKubernetesManifests -update writes it)", cm.Name)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		if v.ConfigMap.Name != cm.Name {
			t.Errorf("volume %s: ConfigMap %s is not in deploy/k8s", v.Name, v.ConfigMap.Name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, vm := range c.VolumeMounts {
				if vm.Name == v.Name && slices.Contains(c.Args, filepath.Join(vm.MountPath, "Caddyfile")) {
					mounted = true
				}
			}
		}
	}
	if !mounted {
		t.Errorf("no container runs the ConfigMap's Caddyfile where it is mounted")
	}

	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
			t.Errorf("HorizontalPodAutoscaler %s: scales %s %s, not the Deployment", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < replicas {
			t.Errorf("HorizontalPodAutoscaler %s: minReplicas below the Deployment's %d", h.Name, replicas)
		}
	}

	// kubectl apply -k applies every manifest
	if m.kustomize == nil {
		t.Fatal("no kustomization.yaml")
	}
	want := slices.Compact(slices.Sorted(slices.Values(m.files)))
	got := slices.Sorted(slices.Values(m.kustomize.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want the manifests %v", got, want)
	}
}

// TestKubernetesChecksRefuse shows the checks above refuse what they are
// for: an unknown field, a wrong probe path, a literal secret, root.
func TestKubernetesChecksRefuse(t *testing.T) {
	t.Parallel()
	if _, err := decodeManifest([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 3\n")); err == nil ||
		!strings.Contains(err.Error(), "replica") {
		t.Errorf("an unknown field decoded: %v", err)
	}
	if _, err := decodeManifest([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n")); err == nil {
		t.Errorf("an unexpected kind decoded")
	}
	caddyfile := readFile(t, "Caddyfile")
	base := loadManifests(t).deployments[0]
	for _, tc := range []struct {
		name, want string
		change     func(d *appsv1.Deployment)
	}{
		{"readiness path", "readinessProbe on \"/healthz\"", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/healthz"
		}},
		{"literal secret", "env ERP_MASTER_KEY holds a secret", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Env = append(d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "ERP_MASTER_KEY", Value: "c2VjcmV0"})
		}},
		{"root", "runAsNonRoot", func(d *appsv1.Deployment) { d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil }},
		{"writable root", "readOnlyRootFilesystem", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
		}},
		{"latest", ":latest", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "erpgate/gateway:latest" }},
		{"untagged", "no tag", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "erpgate/gateway" }},
		{"no requests", "resources.requests.cpu", func(d *appsv1.Deployment) {
			delete(d.Spec.Template.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU)
		}},
		{"selector", "selector", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} }},
		{"unknown knob", "env ERP_LISTN", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Env = append(d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "ERP_LISTN", Value: ":1"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base.DeepCopy()
			tc.change(d)
			errs := checkDeployment(d, caddyfile)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Fatalf("want an error containing %q, got %q", tc.want, errs)
			}
		})
	}
	if errs := checkDeployment(base, caddyfile); len(errs) != 0 {
		t.Fatalf("the shipped Deployment: %q", errs)
	}
}

// writeConfigMap writes deploy/k8s/configmap.yaml from deploy/Caddyfile
// (go test ./deploy -run TestKubernetesManifests -update), the Caddyfile as
// a literal block, so that the manifest reads as the file does.
func writeConfigMap(t *testing.T) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`# deploy/Caddyfile, as the Deployment mounts it at /etc/erpgate/Caddyfile.
# Written by "go test ./deploy -run TestKubernetesManifests -update": edit deploy/Caddyfile.
apiVersion: v1
kind: ConfigMap
metadata:
  name: erpgate-caddyfile
  labels:
    app.kubernetes.io/name: erpgate
    app.kubernetes.io/component: edge
data:
  Caddyfile: |
`)
	for _, l := range strings.SplitAfter(readFile(t, "Caddyfile"), "\n") {
		if strings.TrimSpace(l) == "" {
			b.WriteString(strings.TrimLeft(l, " \t"))
			continue
		}
		b.WriteString("    " + l)
	}
	if err := os.WriteFile("k8s/configmap.yaml", b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
