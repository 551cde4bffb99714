package ledger

import (
	"strings"
	"testing"
)

func TestPayoutCheck(t *testing.T) {
	good := Payout{ID: "po_1", ClinicID: "clinic-a", Amount: 1882, Currency: "usd", Items: []Item{
		{ID: "txn_1", Type: "charge", Amount: 2000, Fee: 88, Net: 1912, Currency: "usd"},
		{ID: "txn_2", Type: "refund", Amount: -500, Net: -500, Currency: "usd"},
		{ID: "txn_3", Type: "stripe_fee", Amount: 470, Net: 470, Currency: "usd"},
	}}
	if err := good.Check(); err != nil {
		t.Fatalf("a consistent payout: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Payout)
		want   string
	}{
		"no id":             {func(p *Payout) { p.ID = "" }, "no id"},
		"no clinic":         {func(p *Payout) { p.ClinicID = "" }, "no clinic id"},
		"no currency":       {func(p *Payout) { p.Currency = "" }, "no currency"},
		"item without id":   {func(p *Payout) { p.Items[1].ID = "" }, "an item has no id"},
		"other currency":    {func(p *Payout) { p.Items[0].Currency = "eur" }, `item txn_1 is in "eur"`},
		"net not gross-fee": {func(p *Payout) { p.Items[0].Net = 2000 }, "net 2000 is not amount 2000 less fee 88"},
		"an item missing":   {func(p *Payout) { p.Items = p.Items[:2] }, "items add up to 1412, the payout is 1882"},
	} {
		t.Run(name, func(t *testing.T) {
			p := good
			p.Items = append([]Item(nil), good.Items...)
			tc.change(&p)
			if err := p.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
