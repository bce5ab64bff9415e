// kbrender stands in, for the chart's tests, for what KubeBlocks 1.0.2 and the kubelet do to a
// ComponentDefinition before its containers run: resolving its vars for one pod, rendering its
// config and script templates (Go templates with sprig, missing keys are errors), and building a
// container's environment (vars first, then the container's own env, $(VAR) expanded).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// Facts are what KubeBlocks and Kubernetes know about the one pod being stood in for.
type Facts struct {
	ClusterName    string                       `json:"clusterName"`
	Namespace      string                       `json:"namespace"`
	Component      string                       `json:"component"` // the short name
	Replicas       int                          `json:"replicas"`
	ServiceVersion string                       `json:"serviceVersion"`
	ClusterDomain  string                       `json:"clusterDomain"`
	TLSEnabled     bool                         `json:"tlsEnabled"`
	Credentials    map[string]map[string]string `json:"credentials"` // account -> username/password
	PodName        string                       `json:"podName"`
	PodIP          string                       `json:"podIP"`
}

type envVar struct {
	Name      string         `json:"name"`
	Value     string         `json:"value"`
	ValueFrom map[string]any `json:"valueFrom"`
}

type compVar struct {
	Name       string                    `json:"name"`
	Value      string                    `json:"value"`
	Expression *string                   `json:"expression"`
	ValueFrom  map[string]map[string]any `json:"valueFrom"`
}

type fileTemplate struct {
	Name       string `json:"name"`
	Template   string `json:"template"`
	VolumeName string `json:"volumeName"`
}

type container struct {
	Name string   `json:"name"`
	Env  []envVar `json:"env"`
}

// action is a lifecycle action; kbrender stands in for the exec ones only.
type action struct {
	Exec *struct {
		Image     string   `json:"image"`
		Container string   `json:"container"`
		Command   []string `json:"command"`
		Args      []string `json:"args"`
		Env       []envVar `json:"env"`
	} `json:"exec"`
	TimeoutSeconds int `json:"timeoutSeconds"`
}

type compDef struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Vars             []compVar         `json:"vars"`
		Configs          []fileTemplate    `json:"configs"`
		Scripts          []fileTemplate    `json:"scripts"`
		LifecycleActions map[string]action `json:"lifecycleActions"`
		Runtime          struct {
			InitContainers []container `json:"initContainers"`
			Containers     []container `json:"containers"`
		} `json:"runtime"`
	} `json:"spec"`
}

type configMap struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

// resolved is a var after KubeBlocks' resolution: a value, or a credential (a Secret's key in
// a real pod, the value itself here).
type resolved struct {
	name       string
	value      string
	credential bool
	present    bool
}

var varReference = regexp.MustCompile(`\$\(([^)]+)\)`)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kbrender: ERROR: "+format+"\n", args...)
	os.Exit(1)
}

func (f Facts) fullComponentName() string { return f.ClusterName + "-" + f.Component }

func (f Facts) podNames(fqdn bool) string {
	names := make([]string, f.Replicas)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", f.fullComponentName(), i)
		if fqdn {
			names[i] = fmt.Sprintf("%s.%s-headless.%s.svc.%s", names[i], f.fullComponentName(),
				f.Namespace, f.ClusterDomain)
		}
	}
	return strings.Join(names, ",")
}

// resolveSource gives a valueFrom's value as KubeBlocks 1.0.2 would for this chart's pod.
func resolveSource(f Facts, name string, from map[string]map[string]any) resolved {
	r := resolved{name: name, present: true}
	for kind, ref := range from {
		has := func(key string) bool { _, ok := ref[key]; return ok }
		switch {
		case kind == "clusterVarRef" && has("clusterName"):
			r.value = f.ClusterName
		case kind == "clusterVarRef" && has("namespace"):
			r.value = f.Namespace
		case kind == "componentVarRef" && has("componentName"):
			r.value = f.fullComponentName()
		case kind == "componentVarRef" && has("shortName"):
			r.value = f.Component
		case kind == "componentVarRef" && has("replicas"):
			r.value = strconv.Itoa(f.Replicas)
		case kind == "componentVarRef" && has("podNames"):
			r.value = f.podNames(false)
		case kind == "componentVarRef" && has("podFQDNs"):
			r.value = f.podNames(true)
		case kind == "componentVarRef" && has("serviceVersion"):
			r.value = f.ServiceVersion
		case kind == "tlsVarRef" && has("enabled"):
			// No TLS config on the component: the var is not defined at all.
			r.value, r.present = "true", f.TLSEnabled
		case kind == "credentialVarRef" && (has("username") || has("password")):
			account := fmt.Sprint(ref["name"])
			key := "password"
			if has("username") {
				key = "username"
			}
			value, ok := f.Credentials[account][key]
			if !ok {
				fail("var %s: no %s of account %s in the facts", name, key, account)
			}
			r.value, r.credential = value, true
		default:
			fail("var %s: kbrender does not stand in for %s %v", name, kind, ref)
		}
	}
	return r
}

func newTemplate(name string) *template.Template {
	return template.New(name).Option("missingkey=error").Funcs(sprig.TxtFuncMap())
}

// resolveVars: sources, then expressions over the plain values, then $(VAR) references
// between the vars, in KubeBlocks' order.
func resolveVars(f Facts, vars []compVar) []resolved {
	out := make([]resolved, 0, len(vars))
	values := map[string]any{}
	for _, v := range vars {
		r := resolved{name: v.Name, value: v.Value, present: true}
		if v.ValueFrom != nil {
			r = resolveSource(f, v.Name, v.ValueFrom)
		}
		if r.present && !r.credential {
			values[strings.ReplaceAll(v.Name, "-", "_")] = r.value
		}
		out = append(out, r)
	}
	for i, v := range vars {
		if v.Expression == nil || *v.Expression == "" || out[i].credential {
			continue
		}
		tpl, err := newTemplate("vars").Parse(*v.Expression)
		if err != nil {
			fail("var %s: expression: %v", v.Name, err)
		}
		var b strings.Builder
		if err := tpl.Execute(&b, values); err != nil {
			fail("var %s: expression: %v", v.Name, err)
		}
		out[i].value, out[i].present = b.String(), true
		values[strings.ReplaceAll(v.Name, "-", "_")] = b.String()
	}
	byName := map[string]resolved{}
	for _, r := range out {
		if r.present {
			byName[r.name] = r
		}
	}
	for i := range out {
		out[i].value = varReference.ReplaceAllStringFunc(out[i].value, func(ref string) string {
			if r, ok := byName[ref[2:len(ref)-1]]; ok && !r.credential {
				return r.value
			}
			return ref
		})
	}
	return out
}

// templateVars: what the file templates see, the plain (non-credential) vars.
func templateVars(vars []resolved) map[string]any {
	m := map[string]any{}
	for _, r := range vars {
		if r.present && !r.credential {
			m[r.name] = r.value
		}
	}
	return m
}

// expand is the kubelet's $(VAR) expansion: $$ is a literal $, a defined name is replaced,
// anything else stays as written.
func expand(value string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		if value[i] != '$' || i+1 >= len(value) {
			b.WriteByte(value[i])
			continue
		}
		switch next := value[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(value[i+2:], ')')
			if end < 0 {
				b.WriteString(value[i:])
				return b.String()
			}
			name := value[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func fieldRef(f Facts, name string, from map[string]any) string {
	ref, ok := from["fieldRef"].(map[string]any)
	if !ok {
		fail("env %s: kbrender stands in only for fieldRef sources, not %v", name, from)
	}
	switch ref["fieldPath"] {
	case "metadata.name":
		return f.PodName
	case "metadata.namespace":
		return f.Namespace
	case "status.podIP":
		return f.PodIP
	}
	fail("env %s: no stand-in for fieldPath %v", name, ref["fieldPath"])
	return ""
}

// containerEnv: the vars (KubeBlocks puts them first), then the container's own env. Credentials
// are values here; in a pod they are secretKeyRefs the kubelet resolves.
func containerEnv(f Facts, vars []resolved, c container) []string {
	env := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := env[name]; !ok {
			order = append(order, name)
		}
		env[name] = value
	}
	// The plain vars, then the credentials, as KubeBlocks injects them.
	for _, credentials := range []bool{false, true} {
		for _, r := range vars {
			if r.present && r.credential == credentials {
				set(r.name, r.value)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			set(e.Name, fieldRef(f, e.Name, e.ValueFrom))
		} else {
			set(e.Name, expand(e.Value, env))
		}
	}
	lines := make([]string, 0, len(order))
	for _, name := range order {
		lines = append(lines, name+"="+env[name])
	}
	return lines
}

func readDocs(path string) (compDef, map[string]configMap) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var def compDef
	maps := map[string]configMap{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			fail("%s: %v", path, err)
		}
		switch head.Kind {
		case "ComponentDefinition":
			if def.Kind != "" {
				fail("%s holds more than one ComponentDefinition", path)
			}
			if err := yaml.Unmarshal([]byte(doc), &def); err != nil {
				fail("%s: %v", path, err)
			}
		case "ConfigMap":
			var cm configMap
			if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
				fail("%s: %v", path, err)
			}
			maps[cm.Metadata.Name] = cm
		}
	}
	if def.Kind == "" {
		fail("%s holds no ComponentDefinition", path)
	}
	return def, maps
}

func renderFiles(def compDef, maps map[string]configMap, vars map[string]any, out string) {
	for _, ft := range append(append([]fileTemplate{}, def.Spec.Configs...), def.Spec.Scripts...) {
		cm, ok := maps[ft.Template]
		if !ok {
			fail("template %s: ConfigMap %s is not in the input", ft.Name, ft.Template)
		}
		dir := filepath.Join(out, "files", ft.VolumeName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fail("%v", err)
		}
		keys := make([]string, 0, len(cm.Data))
		for key := range cm.Data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			tpl, err := newTemplate(ft.Name).Parse(cm.Data[key])
			if err != nil {
				fail("%s/%s: %v", ft.Template, key, err)
			}
			var b strings.Builder
			if err := tpl.Execute(&b, vars); err != nil {
				fail("%s/%s: %v", ft.Template, key, err)
			}
			if err := os.WriteFile(filepath.Join(dir, key), []byte(b.String()), 0o755); err != nil {
				fail("%v", err)
			}
		}
	}
}

func writeEnv(f Facts, def compDef, vars []resolved, out string) {
	dir := filepath.Join(out, "env")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail("%v", err)
	}
	all := append(append([]container{}, def.Spec.Runtime.InitContainers...), def.Spec.Runtime.Containers...)
	for _, c := range all {
		// NUL-separated NAME=value: values may hold anything but NUL.
		data := strings.Join(containerEnv(f, vars, c), "\x00") + "\x00"
		if err := os.WriteFile(filepath.Join(dir, c.Name), []byte(data), 0o600); err != nil {
			fail("%v", err)
		}
	}
}

// memberParameters: the variables KubeBlocks 1.0.2 adds for this pod as the member of a
// memberLeave or memberJoin (pkg/controller/lifecycle/lfa_member.go).
func memberParameters(f Facts, name string) map[string]string {
	fqdn := fmt.Sprintf("%s.%s-headless.%s.svc.%s", f.PodName, f.fullComponentName(), f.Namespace, f.ClusterDomain)
	switch name {
	case "memberLeave":
		return map[string]string{"KB_LEAVE_MEMBER_POD_NAME": f.PodName, "KB_LEAVE_MEMBER_POD_FQDN": fqdn}
	case "memberJoin":
		return map[string]string{"KB_JOIN_MEMBER_POD_NAME": f.PodName, "KB_JOIN_MEMBER_POD_FQDN": fqdn}
	}
	return map[string]string{}
}

// writeActions: for kb-agent, the container KubeBlocks adds to run the exec actions:
// env/kb-agent (the vars, then every exec action's env, the first of a name kept), and per
// action actions/<name>/command (its argv) and actions/<name>/env (the process's environment:
// the action's parameters, the plain vars and the member's variables, before the container's
// env less those names: pkg/kbagent/service/action_utils.go). NUL-separated. Pod-level facts
// (the engine container's mounts, the image) are the caller's to stand in for.
func writeActions(f Facts, def compDef, vars []resolved, out string) {
	if len(def.Spec.LifecycleActions) == 0 {
		return
	}
	names := make([]string, 0, len(def.Spec.LifecycleActions))
	for name := range def.Spec.LifecycleActions {
		names = append(names, name)
	}
	sort.Strings(names)
	agent := container{Name: "kb-agent"}
	seen := map[string]bool{}
	for _, name := range names {
		a := def.Spec.LifecycleActions[name]
		if a.Exec == nil {
			fail("lifecycle action %s: kbrender stands in only for exec actions", name)
		}
		for _, e := range a.Exec.Env {
			if !seen[e.Name] {
				seen[e.Name] = true
				agent.Env = append(agent.Env, e)
			}
		}
	}
	agentEnv := containerEnv(f, vars, agent)
	writeNul(filepath.Join(out, "env", "kb-agent"), agentEnv)
	for _, name := range names {
		a := def.Spec.LifecycleActions[name]
		// The plain vars, then the member's variables where no var has the name: the vars win
		// (pkg/controller/lifecycle/kbagent.go, parameters).
		params := map[string]string{}
		for k, v := range templateVars(vars) {
			params[k] = v.(string)
		}
		for k, v := range memberParameters(f, name) {
			if _, ok := params[k]; !ok {
				params[k] = v
			}
		}
		env := make([]string, 0, len(params)+len(agentEnv))
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+params[k])
		}
		for _, kv := range agentEnv {
			if _, ok := params[strings.SplitN(kv, "=", 2)[0]]; !ok {
				env = append(env, kv)
			}
		}
		dir := filepath.Join(out, "actions", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fail("%v", err)
		}
		writeNul(filepath.Join(dir, "command"), append(append([]string{}, a.Exec.Command...), a.Exec.Args...))
		writeNul(filepath.Join(dir, "env"), env)
	}
}

func writeNul(path string, items []string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(items, "\x00")+"\x00"), 0o600); err != nil {
		fail("%v", err)
	}
}

func main() {
	rendered := flag.String("rendered", "", "helm template output holding one ComponentDefinition and its ConfigMaps")
	factsFile := flag.String("facts", "", "JSON facts about the pod stood in for")
	out := flag.String("out", "", "output directory: files/<volume>/<key>, env/<container>, actions/<action>/{command,env}")
	flag.Parse()
	if *rendered == "" || *factsFile == "" || *out == "" {
		fail("usage: kbrender -rendered FILE -facts FILE -out DIR")
	}
	raw, err := os.ReadFile(*factsFile)
	if err != nil {
		fail("%v", err)
	}
	var facts Facts
	if err := json.Unmarshal(raw, &facts); err != nil {
		fail("%s: %v", *factsFile, err)
	}
	def, maps := readDocs(*rendered)
	vars := resolveVars(facts, def.Spec.Vars)
	renderFiles(def, maps, templateVars(vars), *out)
	writeEnv(facts, def, vars, *out)
	writeActions(facts, def, vars, *out)
	fmt.Printf("kbrender: %s for pod %s: KubeBlocks 1.0.2's var resolution and file templates, "+
		"the kubelet's env and $(VAR) expansion stood in for\n", def.Metadata.Name, facts.PodName)
}
