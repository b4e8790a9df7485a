package config

import "testing"

// A secret's value is never repeated in an error, not even a wrong one.
func TestSecretsAreNotShown(t *testing.T) {
	for _, name := range []string{"ADMIN_SECRET", "PAYMENT_WEBHOOK_SECRET", "PAYMENT_WEBHOOK_PREVIOUS_SECRETS", "IDEMPOTENCY_KEY_SECRET"} {
		if got := shown(name, "hunter2"); got != name {
			t.Errorf("%s shown as %q", name, got)
		}
	}
	if got := shown("RATE_LIMIT_ORDERS_PER_MINUTE", "abc"); got != `RATE_LIMIT_ORDERS_PER_MINUTE="abc"` {
		t.Errorf("shown as %q", got)
	}
}
