/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// printer writes the demo's readable output: headed steps, the commands run, and short results.
// It is safe for concurrent use (the clinic system prints from its handlers).
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) write(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, s) // a broken terminal must not stop the demo's cleanup
}

// step starts a headed section.
func (p *printer) step(title string) { p.write("\n== " + title + "\n") }

// cmd shows a command about to run, like a shell prompt.
func (p *printer) cmd(line string) { p.write("$ " + line + "\n") }

// info prints one indented line.
func (p *printer) info(format string, args ...any) {
	p.write("   " + fmt.Sprintf(format, args...) + "\n")
}

// output prints a command's output as it would appear in a terminal.
func (p *printer) output(s string) {
	s = strings.TrimRight(s, "\n")
	if s != "" {
		p.write(s + "\n")
	}
}

// detail prints a preformatted block.
func (p *printer) detail(s string) { p.write(s) }
