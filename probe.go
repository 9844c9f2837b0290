package airlock

// Feature is one host mechanism airlock can use.
type Feature struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Detail    string `json:"detail,omitempty"`
	// Lost is what protection is missing without it; Fix says how to get it.
	Lost string `json:"lost,omitempty"`
	Fix  string `json:"fix,omitempty"`
	// Required: the default policy cannot be fully enforced without it.
	Required bool `json:"required"`
}

// DefaultEnforceable reports whether every feature the default policy
// needs is available.
func (f Features) DefaultEnforceable() bool {
	for _, it := range f.Items {
		if it.Required && !it.Available {
			return false
		}
	}
	return len(f.Items) > 0
}

// Features is what this host can enforce, as found by Probe.
type Features struct {
	OS    string    `json:"os"`
	Items []Feature `json:"features"`
}

// Lookup returns the feature named name.
func (f Features) Lookup(name string) (Feature, bool) {
	for _, it := range f.Items {
		if it.Name == name {
			return it, true
		}
	}
	return Feature{}, false
}

// Probe reports which of airlock's mechanisms this host provides to the
// calling user.
func Probe() Features { return probe() }
