// The test oracle for k3snode's YAML output: Debian's gopkg.in/yaml.v2 (the library and version
// K3s parses config.yaml with) decodes each file named on the command line into a yaml.MapSlice,
// as K3s's pkg/configfilearg does, and prints one JSON line per item: the key, the Go type of
// the value and the value as fmt.Sprint shows it. Written for k3snode's tests; not K3s's code.
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"

	"gopkg.in/yaml.v2"
)

func main() {
	for _, path := range os.Args[1:] {
		data, err := ioutil.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		items := yaml.MapSlice{}
		if err := yaml.Unmarshal(data, &items); err != nil {
			out, _ := json.Marshal([]string{path, "error", err.Error()})
			fmt.Println(string(out))
			continue
		}
		for _, item := range items {
			out, _ := json.Marshal([]string{fmt.Sprint(item.Key), fmt.Sprintf("%T", item.Value), fmt.Sprint(item.Value)})
			fmt.Println(string(out))
		}
	}
}
