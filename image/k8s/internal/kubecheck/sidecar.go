package kubecheck

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/aunsorm/timenode/image/k8s/sidecarimage"
)

// SidecarName is the container's name in every manifest.
const SidecarName = "timenode-refresh"

// Sidecar is what timenodectl refresh reads, taken from its source.
type Sidecar struct {
	Env   []string // environment variables, sorted
	Files []string // file names it takes from $CREDENTIALS_DIRECTORY, sorted
}

var (
	envRE  = regexp.MustCompile(`^(AUNSORM_[A-Z0-9_]+|CREDENTIALS_DIRECTORY)$`)
	fileRE = regexp.MustCompile(`^refresh-[a-z-]+\.(pem|crt|key)$`)
)

// ReadSidecar collects the environment names and credential file names
// that appear as whole string literals in cmd/timenodectl/refresh.go of
// the checkout at src, so that a manifest setting a name the sidecar
// does not read (or missing one it does) fails its test.
func ReadSidecar(src string) (Sidecar, error) {
	p := filepath.Join(src, "cmd", "timenodectl", "refresh.go")
	f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
	if err != nil {
		return Sidecar{}, err
	}
	var s Sidecar
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		v, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		switch {
		case envRE.MatchString(v) && !slices.Contains(s.Env, v):
			s.Env = append(s.Env, v)
		case fileRE.MatchString(v) && !slices.Contains(s.Files, v):
			s.Files = append(s.Files, v)
		}
		return true
	})
	slices.Sort(s.Env)
	slices.Sort(s.Files)
	if len(s.Env) == 0 || len(s.Files) == 0 {
		return s, fmt.Errorf("%s: no environment or credential names found", p)
	}
	return s, nil
}

// CheckContainer returns what is wrong with the sidecar container c: its
// command, security context, probes, port, environment and credentials.
func CheckContainer(c corev1.Container, sc Sidecar) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Name != SidecarName {
		bad("container name %q, want %q", c.Name, SidecarName)
	}
	if !slices.Equal(c.Command, sidecarimage.Entrypoint) {
		bad("command %q, want the image's entrypoint %q", c.Command, sidecarimage.Entrypoint)
	}
	s := c.SecurityContext
	switch {
	case s == nil:
		bad("no securityContext")
	default:
		if s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
			bad("runAsNonRoot is not true")
		}
		if s.RunAsUser == nil || *s.RunAsUser != sidecarimage.UID {
			bad("runAsUser %v, want %d", s.RunAsUser, sidecarimage.UID)
		}
		if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			bad("readOnlyRootFilesystem is not true")
		}
		if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
			bad("allowPrivilegeEscalation is not false")
		}
		if s.Privileged != nil && *s.Privileged {
			bad("privileged")
		}
		if s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) != 0 {
			bad("capabilities %+v, want drop [ALL] and no add", s.Capabilities)
		}
		if s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("seccompProfile %+v, want RuntimeDefault", s.SeccompProfile)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != sidecarimage.Port || c.Ports[0].Protocol != corev1.ProtocolTCP || c.Ports[0].HostPort != 0 {
		bad("ports %+v, want only TCP %d, not on the host", c.Ports, sidecarimage.Port)
	}
	errs = append(errs, checkProbe("readinessProbe", c.ReadinessProbe, c.Ports, "/health")...)
	errs = append(errs, checkProbe("livenessProbe", c.LivenessProbe, c.Ports, "/metrics")...)
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		bad("resources %+v: want a memory request and limit", c.Resources)
	}
	var names []string
	env := map[string]string{}
	for _, e := range c.Env {
		names = append(names, e.Name)
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			bad("env %s comes from %+v; want a value", e.Name, e.ValueFrom)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, sc.Env) {
		bad("env names %q, want what timenodectl refresh reads: %q", names, sc.Env)
	}
	dir := env["CREDENTIALS_DIRECTORY"]
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir && dir != "" {
			mounted = true
			if !m.ReadOnly {
				bad("credentials mount %s is writable", m.MountPath)
			}
		}
	}
	if !mounted {
		bad("CREDENTIALS_DIRECTORY=%q is no mount of the container (mounts %+v)", dir, c.VolumeMounts)
	}
	return errs
}

// checkProbe wants an httpGet on path at the sidecar's port.
func checkProbe(what string, p *corev1.Probe, ports []corev1.ContainerPort, path string) []error {
	if p == nil || p.HTTPGet == nil {
		return []error{fmt.Errorf("%s: want an httpGet on %s", what, path)}
	}
	g := p.HTTPGet
	port := g.Port.IntValue()
	for _, cp := range ports {
		if g.Port.StrVal != "" && cp.Name == g.Port.StrVal {
			port = int(cp.ContainerPort)
		}
	}
	if g.Path != path || port != sidecarimage.Port {
		return []error{fmt.Errorf("%s: httpGet %s on port %s, want %s on %d", what, g.Path, g.Port.String(), path, sidecarimage.Port)}
	}
	return nil
}

// CheckPod returns what is wrong with the pod around the sidecar: the
// sidecar present once (as a container, or a native sidecar init
// container), its credentials a Secret volume that only it mounts, and
// an fsGroup so that its user can read the group-readable files.
func CheckPod(spec corev1.PodSpec, sc Sidecar) (secret string, errs []error) {
	var side *corev1.Container
	for i, c := range spec.Containers {
		if c.Name == SidecarName {
			side = &spec.Containers[i]
		}
	}
	for i, c := range spec.InitContainers {
		if c.Name == SidecarName {
			if side != nil {
				errs = append(errs, errors.New("sidecar both in containers and initContainers"))
			}
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				errs = append(errs, errors.New("sidecar init container without restartPolicy Always would block the app"))
			}
			side = &spec.InitContainers[i]
		}
	}
	if side == nil {
		return "", []error{errors.New("no timenode-refresh container")}
	}
	errs = append(errs, CheckContainer(*side, sc)...)
	var vol string
	for _, m := range side.VolumeMounts {
		vol = m.Name
	}
	for _, c := range append(slices.Clone(spec.Containers), spec.InitContainers...) {
		if c.Name == SidecarName {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == vol {
				errs = append(errs, fmt.Errorf("container %s mounts the sidecar's credentials", c.Name))
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Name == vol {
			if v.Secret == nil {
				errs = append(errs, fmt.Errorf("volume %s is no Secret", vol))
				continue
			}
			secret = v.Secret.SecretName
			if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
				errs = append(errs, fmt.Errorf("secret volume mode %v: want none for others", m))
			}
		}
	}
	if secret == "" {
		errs = append(errs, fmt.Errorf("no Secret volume %q", vol))
	}
	if spec.SecurityContext == nil || spec.SecurityContext.FSGroup == nil {
		errs = append(errs, errors.New("pod has no fsGroup: the sidecar's user cannot read its group-readable credentials"))
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		errs = append(errs, errors.New("service account token mounted: the sidecar needs no Kubernetes API"))
	}
	return secret, errs
}
