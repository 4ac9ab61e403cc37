package kubecheck

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/aunsorm/timenode/image/k8s/sidecarimage"
)

// PolicyWant is what the sidecar's NetworkPolicy must allow, and all it
// may allow.
type PolicyWant struct {
	NodeCIDRs []string // the time node's addresses
	NodePort  int      // its HTTPS port
}

// CheckNetworkPolicy returns what np allows beyond, or fails to allow
// of, the sidecar's needs: in, TCP 50011 from pod or namespace selectors
// only; out, the node's CIDRs on its HTTPS port and DNS (53, UDP and TCP)
// to selected pods only. A rule with no peers or no ports allows
// everything and is an error.
func CheckNetworkPolicy(np *networkingv1.NetworkPolicy, want PolicyWant) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	sp := np.Spec
	if len(sp.PodSelector.MatchLabels) == 0 && len(sp.PodSelector.MatchExpressions) == 0 {
		bad("empty podSelector: the policy isolates every pod of the namespace")
	}
	if !slices.Contains(sp.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(sp.PolicyTypes, networkingv1.PolicyTypeEgress) {
		bad("policyTypes %v, want Ingress and Egress", sp.PolicyTypes)
	}
	if len(sp.Ingress) == 0 {
		bad("no ingress rule: the probes' and the runbook's /health check need :%d", sidecarimage.Port)
	}
	for i, r := range sp.Ingress {
		if len(r.From) == 0 {
			bad("ingress %d: no from, allows every source", i)
		}
		for _, p := range r.From {
			if p.IPBlock != nil {
				bad("ingress %d: ipBlock %s; want pod or namespace selectors", i, p.IPBlock.CIDR)
			}
		}
		if len(r.Ports) != 1 || !isPort(r.Ports[0], corev1.ProtocolTCP, sidecarimage.Port) {
			bad("ingress %d: ports %v, want only TCP %d", i, portList(r.Ports), sidecarimage.Port)
		}
	}
	var toNode, toDNS bool
	for i, r := range sp.Egress {
		if len(r.To) == 0 || len(r.Ports) == 0 {
			bad("egress %d: to %d peers on %d ports; an empty list allows everything", i, len(r.To), len(r.Ports))
			continue
		}
		switch {
		case len(r.Ports) == 1 && isPort(r.Ports[0], corev1.ProtocolTCP, want.NodePort):
			var cidrs []string
			for _, p := range r.To {
				if p.IPBlock == nil || len(p.IPBlock.Except) != 0 {
					bad("egress %d: peer %+v, want the time node's ipBlocks", i, p)
					continue
				}
				cidrs = append(cidrs, p.IPBlock.CIDR)
			}
			if !slices.Equal(cidrs, want.NodeCIDRs) {
				bad("egress %d: to %v, want the time node %v", i, cidrs, want.NodeCIDRs)
			}
			toNode = true
		case len(r.Ports) == 2 && isPort(r.Ports[0], corev1.ProtocolUDP, 53) && isPort(r.Ports[1], corev1.ProtocolTCP, 53):
			for _, p := range r.To {
				if p.IPBlock != nil || p.PodSelector == nil || len(p.PodSelector.MatchLabels) == 0 {
					bad("egress %d: DNS peer %+v, want selected DNS pods", i, p)
				}
			}
			toDNS = true
		default:
			bad("egress %d: ports %v; want TCP %d or DNS", i, portList(r.Ports), want.NodePort)
		}
	}
	if !toNode || !toDNS {
		bad("egress to the time node %v, to DNS %v: want both", toNode, toDNS)
	}
	return errs
}

func isPort(p networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int) bool {
	return p.Protocol != nil && *p.Protocol == proto && p.Port != nil && p.Port.IntValue() == port && p.EndPort == nil
}

func portList(ps []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ps {
		s := "?"
		if p.Protocol != nil {
			s = string(*p.Protocol)
		}
		if p.Port != nil {
			s += "/" + p.Port.String()
		}
		out = append(out, s)
	}
	return out
}
