package v1alpha1

import (
	"net"
	"strconv"

	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate reports every problem of a defaulted StraitConfig, each with its field path
// (for example clusters[1].name). It checks only the file itself: whether each manifests
// directory or kubeconfig file exists is for the loader to check, since it depends on where the file is.
func (c *StraitConfig) Validate() field.ErrorList {
	var errs field.ErrorList
	if gv := SchemeGroupVersion.String(); c.APIVersion != gv {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{gv}))
	}
	if c.Kind != StraitConfigKind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{StraitConfigKind}))
	}

	clustersPath := field.NewPath("clusters")
	if len(c.Clusters) == 0 {
		errs = append(errs, field.Required(clustersPath, "at least one cluster is required"))
	}
	seen := make(map[string]bool, len(c.Clusters))
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		p := clustersPath.Index(i)
		switch {
		case cl.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "a DNS label"))
		case seen[cl.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), cl.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(cl.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), cl.Name, msg))
			}
		}
		seen[cl.Name] = true
		errs = append(errs, metav1validation.ValidateLabels(cl.Labels, p.Child("labels"))...)
		switch {
		case cl.Manifests == "" && cl.Kubeconfig == "":
			errs = append(errs, field.Required(p.Child("manifests"), "a directory of YAML manifests, or a kubeconfig"))
		case cl.Manifests != "" && cl.Kubeconfig != "":
			errs = append(errs, field.Forbidden(p.Child("kubeconfig"), "a cluster has manifests or a kubeconfig, not both"))
		}
	}

	bindPath := field.NewPath("proxy", "bindAddress")
	if net.ParseIP(c.Proxy.BindAddress) == nil {
		errs = append(errs, field.Invalid(bindPath, c.Proxy.BindAddress, "must be an IP address"))
	}
	errs = append(errs, validateHostPort(field.NewPath("xds"), c.XDS)...)
	errs = append(errs, validateHostPort(field.NewPath("admin"), c.Admin)...)
	return errs
}

// validateHostPort accepts host:port where host is empty (every interface), an IP address or
// a DNS name, and port is a number from 0 to 65535 (0 lets the system pick a free port).
func validateHostPort(p *field.Path, value string) field.ErrorList {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return field.ErrorList{field.Invalid(p, value, "must be host:port")}
	}
	var errs field.ErrorList
	if host != "" && net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(host)) > 0 {
		errs = append(errs, field.Invalid(p, value, "host must be empty, an IP address or a DNS name"))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		errs = append(errs, field.Invalid(p, value, "port must be a number from 0 to 65535"))
	}
	return errs
}
