package prices

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// override is one entry of the user's price file (AGENTWATCH_PRICES_FILE format, see pricing.py):
// an exact model name or a prefix, optionally for one provider, with flat per-token rates.
type override struct {
	pattern  string // lower-cased
	exact    bool
	provider string // genai-prices id, "" for any provider
	entry    entry
}

var priceFields = []string{"input", "output", "cache_read", "cache_write", "reasoning"}

var allowedKeys = map[string]bool{"model": true, "model_prefix": true, "provider": true,
	"input": true, "output": true, "cache_read": true, "cache_write": true, "reasoning": true}

// PyYAML (YAML 1.1) reads 1e-6 as text; refuse what it refuses, so one file means the same to both.
var yaml11NotFloat = regexp.MustCompile(`^[-+]?[0-9][0-9_]*[eE]`)

// ConfigError is a malformed price file: the message names the file, the entry and the problem.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErr(format string, args ...any) error { return &ConfigError{fmt.Sprintf(format, args...)} }

// LoadOverrides parses and strictly validates a price file, as the Python _load_overrides does.
func LoadOverrides(path string) ([]override, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, configErr("%s: cannot read price overrides: %v", path, err)
	}
	table, err := Default()
	if err != nil {
		return nil, err
	}
	return parseOverrides(path, data, table)
}

func parseOverrides(path string, data []byte, table *Table) ([]override, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, configErr("%s: not valid YAML: %v", path, err)
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root == nil || root.Kind != yaml.MappingNode || len(root.Content) != 2 || root.Content[0].Value != "models" {
		return nil, configErr("%s: expected a mapping with exactly one key 'models' (a list of model prices), got %s", path, describe(root))
	}
	list := root.Content[1]
	if isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, configErr("%s: 'models' must be a list of model prices, got %s", path, describe(list))
	}
	type dupKey struct {
		pattern  string
		exact    bool
		provider string
	}
	seen := map[dupKey]int{}
	var out []override
	for i, raw := range list.Content {
		o, err := parseEntry(path, i, raw, table)
		if err != nil {
			return nil, err
		}
		k := dupKey{o.pattern, o.exact, o.provider}
		if j, dup := seen[k]; dup {
			return nil, configErr("%s: models[%d] (%s): duplicate of models[%d]", path, i, entryName(raw), j)
		}
		seen[k] = i
		out = append(out, o)
	}
	return out, nil
}

func parseEntry(path string, i int, raw *yaml.Node, table *Table) (override, error) {
	var o override
	if raw.Kind != yaml.MappingNode {
		return o, configErr("%s: models[%d]: expected a mapping, got %s", path, i, describe(raw))
	}
	where := fmt.Sprintf("%s: models[%d] (%s)", path, i, entryName(raw))
	fields := map[string]*yaml.Node{}
	var unknown []string
	for k := 0; k+1 < len(raw.Content); k += 2 {
		key := raw.Content[k].Value
		if !allowedKeys[key] {
			unknown = append(unknown, "'"+key+"'")
		}
		fields[key] = raw.Content[k+1]
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		keys := make([]string, 0, len(allowedKeys))
		for k := range allowedKeys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return o, configErr("%s: unknown key(s) %s; allowed: %s", where, strings.Join(unknown, ", "), strings.Join(keys, ", "))
	}
	_, hasModel := fields["model"]
	_, hasPrefix := fields["model_prefix"]
	if hasModel == hasPrefix {
		return o, configErr("%s: give exactly one of 'model' (exact name) or 'model_prefix'", where)
	}
	nameKey := "model_prefix"
	if hasModel {
		nameKey = "model"
	}
	pattern := fields[nameKey]
	if !isString(pattern) || strings.TrimSpace(pattern.Value) == "" {
		return o, configErr("%s: '%s' must be a non-empty string, got %s", where, nameKey, describe(pattern))
	}
	if p, ok := fields["provider"]; ok && !isNull(p) {
		if !isString(p) || strings.TrimSpace(p.Value) == "" {
			return o, configErr("%s: 'provider' must be a non-empty string, got %s", where, describe(p))
		}
		o.provider = table.providerID(p.Value)
	}
	for _, required := range []string{"input", "output"} {
		if _, ok := fields[required]; !ok {
			return o, configErr("%s: missing required price '%s' (USD per million tokens)", where, required)
		}
	}
	values := map[string]float64{}
	for _, f := range priceFields {
		n, ok := fields[f]
		if !ok {
			continue
		}
		v, err := number(n)
		if err != nil {
			hint := ""
			if n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || yaml11NotFloat.MatchString(n.Value)) {
				hint = " (PyYAML reads 1e-6 as text: write 0.000001 or 1.0e-6)"
			}
			return o, configErr("%s: price '%s' must be a number (USD per million tokens), got %s%s", where, f, describe(n), hint)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return o, configErr("%s: price '%s' must be a finite number >= 0, got %v", where, f, v)
		}
		values[f] = v / perMTok
	}
	pIn, pOut := values["input"], values["output"]
	get := func(k string, def float64) float64 {
		if v, ok := values[k]; ok {
			return v
		}
		return def
	}
	o.pattern = strings.ToLower(strings.TrimSpace(pattern.Value))
	o.exact = nameKey == "model"
	o.entry = entry{rates: []rates{{pIn, get("cache_read", pIn), get("cache_write", pIn), pOut, get("reasoning", pOut), 0}}}
	return o, nil
}

// perMTok is a variable so the division happens at run time in IEEE double, as in Python.
var perMTok = 1_000_000.0

func number(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || yaml11NotFloat.MatchString(n.Value) {
		return 0, fmt.Errorf("not a number")
	}
	if n.Tag == "!!int" {
		var i int64
		if err := n.Decode(&i); err == nil {
			return float64(i), nil
		}
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return 0, err
	}
	return f, nil
}

func isNull(n *yaml.Node) bool { return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") }

func isString(n *yaml.Node) bool { return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" }

func describe(n *yaml.Node) string {
	if isNull(n) {
		return "nothing"
	}
	v := n.Value
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if len(v) > 80 {
		v = v[:80]
	}
	return strings.TrimPrefix(n.Tag, "!!") + " " + strconv.Quote(v)
}

func entryName(raw *yaml.Node) string {
	if raw.Kind == yaml.MappingNode {
		for _, key := range []string{"model", "model_prefix"} {
			for k := 0; k+1 < len(raw.Content); k += 2 {
				if raw.Content[k].Value == key {
					v := raw.Content[k+1].Value
					if len(v) > 80 {
						v = v[:80]
					}
					return key + " " + strconv.Quote(v)
				}
			}
		}
	}
	return "unnamed"
}

// matchOverride is Python's _match_override: exact beats prefix, longer beats shorter, a provider-specific
// entry beats a provider-less one; the first of equals wins.
func matchOverride(ovs []override, providerID, modelL string) *override {
	var best *override
	bestRank := [3]int{-1, -1, -1}
	for i := range ovs {
		o := &ovs[i]
		if o.provider != "" && o.provider != providerID {
			continue
		}
		if o.exact && modelL != o.pattern || !o.exact && !strings.HasPrefix(modelL, o.pattern) {
			continue
		}
		rank := [3]int{b2i(o.exact), len([]rune(o.pattern)), b2i(o.provider != "")}
		if best == nil || rankGreater(rank, bestRank) {
			best, bestRank = o, rank
		}
	}
	return best
}

func rankGreater(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
