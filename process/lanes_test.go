package process

import (
	"slices"
	"testing"
)

// Every step kind runs in exactly one lane (a kind in none would never be
// claimed).
func TestEveryKindHasOneLane(t *testing.T) {
	for _, k := range Kinds() {
		if n := btoi(slices.Contains(providerKinds, k)) + btoi(slices.Contains(storeKinds, k)); n != 1 {
			t.Errorf("kind %s is in %d lanes", k, n)
		}
	}
	if len(providerKinds)+len(storeKinds) != len(Kinds()) {
		t.Errorf("lanes hold %d kinds, there are %d", len(providerKinds)+len(storeKinds), len(Kinds()))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
