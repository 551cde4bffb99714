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

package manifests

import (
	"os"
	"testing"

	"github.com/clinicpay/stripe-operator/test/testrun"
)

// TestMain lets the two control planes (the dry-run apply and the namespaced install) start at
// once, and the rendering checks run beside them: they share only the renderings, made once.
func TestMain(m *testing.M) {
	testrun.ParallelByDefault(4)
	os.Exit(m.Run())
}
