#!/usr/bin/env python3
# test_evaluate.py -- one test per evaluate/simulate feature of seed 002 and
# PRODUCT-DECISIONS §3/§4, through the real processes. Every test works in its
# own POS group (promotions scoped to it), so tests do not see each other.
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (D, UUID_RE, basket, exp_line, exp_totals, item,  # noqa: E402
                     money, new_id, pct_action, promotion, uniq)


def disc(promo, dtype, value, amount):
    return (promo["id"], promo["name"], promo["type"], dtype, value, amount)


class Evaluate(harness.TestCase):
    # -- helpers ---------------------------------------------------------------
    def setup_promo(self, conditions, actions, probe_items, probe_extra=None,
                    **kw):
        """A fresh POS group, one promotion in it, waited for with a probe
        basket that it applies to. Returns (group, promo)."""
        g = self.pos_group()
        p = promotion(kw.pop("name", uniq("Promo")), conditions, actions,
                      pos_groups=[g["id"]], **kw)
        self.stack.create_promotion(p)
        self.stack.wait_for_promotion(
            p["id"], basket(g["id"], probe_items, **(probe_extra or {})))
        return g, p

    def ev(self, req, simulate=False):
        r = (self.stack.simulate if simulate else self.stack.evaluate)(req)
        return self.assertEval(r, simulation=simulate)

    def assert_applies(self, g, p, items, expected_lines, **kw):
        b = self.ev(basket(g["id"], items, **kw))
        self.assertLines(b, expected_lines)
        return b

    # -- iteration identity ----------------------------------------------------
    def test_counter_per_transaction(self):
        g = self.pos_group()
        items = [item("L1", uniq("A"), 1, "1.00")]
        ta, tb = uniq("TX"), uniq("TX")
        for n in (1, 2, 3):
            b = self.ev(basket(g["id"], items, txn=ta))
            self.assertEqual(b["meta"]["header"],
                             {"transactionId": ta, "transactionCounter": n})
        b = self.ev(basket(g["id"], items, txn=tb))
        self.assertEqual(b["meta"]["header"], {"transactionId": tb, "transactionCounter": 1})
        b = self.ev(basket(g["id"], items, txn=ta))
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 4)

    def test_counters_under_concurrent_evaluates(self):
        """The evaluator remembers each transaction's last counter (a few
        thousand of them, per lock stripe) and reads the store for the
        others: evaluates of one transaction from eight threads, with
        simulates between them, get every counter exactly once; then 600
        transactions, more than share a remembered slot without evicting
        each other, count on where they left off."""
        g = self.pos_group()
        items = [item("L1", uniq("A"), 1, "1.00")]
        t = uniq("TX")
        got, sims, errors = [], [], []

        def run(simulate):
            for _ in range(10):
                r = (self.stack.simulate if simulate else self.stack.evaluate)(
                    basket(g["id"], items, txn=t))
                if r.status != 200:
                    errors.append(r.status)
                    continue
                (sims if simulate else got).append(
                    r.body["meta"]["header"]["transactionCounter"])
        threads = [threading.Thread(target=run, args=(i >= 8,)) for i in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(sorted(got), list(range(1, 81)))
        self.assertEqual(len(sims), 20)
        self.assertTrue(all(1 <= c <= 81 for c in sims), sims)
        b = self.ev(basket(g["id"], items, txn=t))
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 81)

        many = [uniq("TXM") for _ in range(600)]
        for rnd in (1, 2):
            for tx in many:
                b = self.ev(basket(g["id"], items, txn=tx))
                self.assertEqual(b["meta"]["header"],
                                 {"transactionId": tx, "transactionCounter": rnd})

    def test_generated_transaction_id(self):
        g = self.pos_group()
        items = [item("L1", uniq("A"), 1, "1.00")]
        b1 = self.ev(basket(g["id"], items))
        b2 = self.ev(basket(g["id"], items))
        h1, h2 = b1["meta"]["header"], b2["meta"]["header"]
        self.assertEqual(set(h1), {"transactionId", "transactionCounter"})
        self.assertRegex(h1["transactionId"], UUID_RE)
        self.assertEqual(h1["transactionCounter"], 1)
        self.assertNotEqual(h1["transactionId"], h2["transactionId"])
        self.assertEqual(h2["transactionCounter"], 1)
        # the POS echoes it on the next call: counter 2
        b3 = self.ev(basket(g["id"], items, txn=h1["transactionId"]))
        self.assertEqual(b3["meta"]["header"],
                         {"transactionId": h1["transactionId"], "transactionCounter": 2})
        # simulate without an id generates one too
        b4 = self.ev(basket(g["id"], items), simulate=True)
        self.assertRegex(b4["meta"]["header"]["transactionId"], UUID_RE)
        self.assertEqual(b4["meta"]["header"]["transactionCounter"], 1)

    def test_simulate_writes_nothing(self):
        g = self.pos_group()
        items = [item("L1", uniq("A"), 1, "1.00")]
        t = uniq("TX")
        b = self.ev(basket(g["id"], items, txn=t), simulate=True)
        self.assertIs(b["meta"]["isSimulation"], True)
        self.assertEqual(b["meta"]["header"], {"transactionId": t, "transactionCounter": 1})
        b = self.ev(basket(g["id"], items, txn=t), simulate=True)
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 1)
        b = self.ev(basket(g["id"], items, txn=t))
        self.assertIs(b["meta"]["isSimulation"], False)
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 1)
        b = self.ev(basket(g["id"], items, txn=t), simulate=True)
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 2)
        b = self.ev(basket(g["id"], items, txn=t))
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 2)

    def test_receipt_id_and_header_reference_echoed(self):
        g = self.pos_group()
        t = uniq("TX")
        req = basket(g["id"], [item("L1", uniq("A"), 1, "1.00")])
        req["header"] = {"transactionId": t, "receiptId": "RCPT-0042",
                         "headerReference": "corr/ä€-" + "x" * 80}
        b = self.ev(req)
        self.assertEqual(b["meta"]["header"], {
            "transactionId": t, "transactionCounter": 1, "receiptId": "RCPT-0042",
            "headerReference": "corr/ä€-" + "x" * 80})

    # -- lines -------------------------------------------------------------------
    def test_return_lines(self):
        grp = uniq("G")[:20]
        art_sale, art_ret = uniq("A"), uniq("A")
        g, p = self.setup_promo(
            [{"type": "ARTICLE_GROUP", "values": [grp]}],
            [{"type": "ARTICLE_GROUP", "discountType": "PERCENTAGE", "value": 10,
              "target": {"articleGroups": [grp]}}],
            [item("P", art_sale, 1, "10.00", articleGroupId=grp)])
        items = [item("S1", art_sale, 2, "10.00", articleGroupId=grp),
                 item("R1", art_ret, -1, "5.00", articleGroupId=grp)]
        b = self.ev(basket(g["id"], items))
        sale = exp_line("S1", art_sale, "2.000", "10.00",
                        [disc(p, "PERCENTAGE", 10, "2.00")], group=grp)
        ret = exp_line("R1", art_ret, "-1.000", "5.00", [], group=grp)
        self.assertJson([sale, ret], b["lineItems"])
        t = b["totals"]
        self.assertEqual(t["subtotal"], money("15.00"))
        self.assertEqual(t["discount"], money("2.00"))
        self.assertEqual(t["grandTotal"], money("13.00"))
        self.assertEqual(t["saleSubtotal"], money("20.00"))
        self.assertEqual(t["returnSubtotal"], money("-5.00"))
        self.assertJson([{"promotionId": p["id"], "promotionName": p["name"],
                          "totalDiscount": money("2.00"), "affectedItems": ["S1"]}],
                        t["savingsSummary"]["promotionBreakdown"])
        # without return lines the two fields are absent
        b = self.ev(basket(g["id"], items[:1]))
        self.assertNotIn("saleSubtotal", b["totals"])
        self.assertNotIn("returnSubtotal", b["totals"])
        # a return line alone
        b = self.ev(basket(g["id"], items[1:]))
        self.assertJson([ret], b["lineItems"])
        self.assertEqual(b["totals"]["subtotal"], money("-5.00"))
        self.assertEqual(b["totals"]["discount"], money("0.00"))
        self.assertEqual(b["totals"]["grandTotal"], money("-5.00"))
        self.assertEqual(b["totals"]["saleSubtotal"], money("0.00"))
        self.assertEqual(b["totals"]["returnSubtotal"], money("-5.00"))

    def test_auto_line_reference(self):
        grp = uniq("G")[:20]
        a1, a2, a3 = uniq("A"), uniq("A"), uniq("A")
        g, p = self.setup_promo(
            [{"type": "ARTICLE_GROUP", "values": [grp]}],
            [pct_action(10, articleGroups=[grp])],
            [item("P", a1, 1, "10.00", articleGroupId=grp)])
        items = [item("X", a1, 1, "10.00", articleGroupId=grp),
                 item("MINE", a2, 1, "3.00"),
                 item("X", a3, 2, "1.50", articleGroupId=grp)]
        del items[0]["lineReference"], items[2]["lineReference"]
        b = self.ev(basket(g["id"], items))
        refs = [li["lineReference"] for li in b["lineItems"]]
        self.assertEqual([li["articleNumber"] for li in b["lineItems"]], [a1, a2, a3])
        self.assertEqual(refs[1], "MINE")
        for r in (refs[0], refs[2]):
            self.assertIsInstance(r, str)
            self.assertTrue(0 < len(r) <= 50, r)
        self.assertEqual(len(set(refs)), 3, refs)
        bd = b["totals"]["savingsSummary"]["promotionBreakdown"]
        self.assertEqual(len(bd), 1)
        self.assertEqual(bd[0]["affectedItems"], [refs[0], refs[2]])
        self.assertEqual(bd[0]["totalDiscount"], money("1.30"))
        # deterministic: the same basket gets the same references
        b2 = self.ev(basket(g["id"], items))
        self.assertEqual([li["lineReference"] for li in b2["lineItems"]], refs)

    def test_pos_group_by_code(self):
        g = self.pos_group()
        art = uniq("A")
        p = promotion(uniq("Promo"), [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[g["id"]])
        self.stack.create_promotion(p)
        # promotion refers to the group by id, the request by code
        req = {"posGroupCode": g["code"], "items": [item("L1", art, 1, "10.00")],
               "timestamp": harness.TS}
        self.stack.wait_for_promotion(p["id"], req)
        b = self.ev(req)
        self.assertLines(b, [exp_line("L1", art, 1, "10.00",
                                      [disc(p, "PERCENTAGE", 10, "1.00")])])
        # an unknown code never blocks the sale (PRODUCT-DECISIONS §4c):
        # all-store promotions only, and a warning
        nope = uniq("NOPE")[:20]
        b = self.ev(dict(req, posGroupCode=nope))
        self.assertEqual(b["lineItems"][0]["discounts"], [])
        self.assertEqual(b["meta"]["warnings"], [{
            "code": "UNKNOWN_POS_GROUP", "target": "posGroupCode",
            "message": "unknown posGroupCode '%s': priced with the promotions of "
                       "every store" % nope}])
        self.assertNotIn("warnings", self.ev(req)["meta"])
        # a promotion naming the group by its code, requested by id
        art2 = uniq("A")
        p2 = promotion(uniq("Promo"), [{"type": "ARTICLE", "values": [art2]}],
                       [pct_action(20, articles=[art2])], pos_groups=[g["code"]])
        self.stack.create_promotion(p2)
        req2 = basket(g["id"], [item("L1", art2, 1, "10.00")])
        self.stack.wait_for_promotion(p2["id"], req2)
        b = self.ev(req2)
        self.assertLines(b, [exp_line("L1", art2, 1, "10.00",
                                      [disc(p2, "PERCENTAGE", 20, "2.00")])])

    # -- candidate filters -------------------------------------------------------
    def test_not_applied_inactive_future_expired_other_store(self):
        s = self.stack
        g, other = self.pos_group(), self.pos_group()
        art = uniq("A")
        cond = [{"type": "ARTICLE", "values": [art]}]
        act = [pct_action(10, articles=[art])]
        inactive = promotion("inactive", cond, act, pos_groups=[g["id"]], status="INACTIVE")
        draft = promotion("draft", cond, act, pos_groups=[g["id"]], status="DRAFT")
        future = promotion("future", cond, act, pos_groups=[g["id"]],
                           valid_from="2027-01-01T00:00:00Z", valid_to="2027-12-31T00:00:00Z")
        expired = promotion("expired", cond, act, pos_groups=[g["id"]],
                            valid_from="2025-01-01T00:00:00Z", valid_to="2025-12-31T00:00:00Z")
        elsewhere = promotion("other store", cond, act, pos_groups=[other["id"]])
        for p in (inactive, draft, future, expired, elsewhere):
            s.create_promotion(p)
        # created last: once it applies, the ones before it are loaded too
        art2 = uniq("A")
        control = promotion("control", [{"type": "ARTICLE", "values": [art2]}],
                            [pct_action(5, articles=[art2])], pos_groups=[g["id"]])
        s.create_promotion(control)
        items = [item("L1", art, 1, "10.00"), item("L2", art2, 1, "10.00")]
        s.wait_for_promotion(control["id"], basket(g["id"], items))
        expected = [exp_line("L1", art, 1, "10.00"),
                    exp_line("L2", art2, 1, "10.00",
                             [disc(control, "PERCENTAGE", 5, "0.50")])]
        b = self.ev(basket(g["id"], items))
        self.assertLines(b, expected)
        self.assertNotIn("missedPromotions", b)
        # and the simulator explains why
        b = self.ev(basket(g["id"], items, includeMissedPromotions=True), simulate=True)
        self.assertLines(b, expected)
        mine = {m["promotionId"]: m for m in b["missedPromotions"]
                if m["promotionId"] in (inactive["id"], draft["id"], future["id"],
                                        expired["id"], elsewhere["id"], control["id"])}
        stages = {k: v["stage"] for k, v in mine.items()}
        self.assertEqual(stages, {inactive["id"]: "STATUS", draft["id"]: "STATUS",
                                  future["id"]: "VALIDITY", expired["id"]: "VALIDITY",
                                  elsewhere["id"]: "POS_GROUP"})
        for m in mine.values():
            self.assertEqual(set(m), {"promotionId", "promotionName", "stage", "reason"})
            self.assertIsInstance(m["reason"], str)
        self.assertEqual(mine[future["id"]]["promotionName"], "future")
        # the promotion's validity is checked against the request timestamp
        b = self.ev(basket(g["id"], items, timestamp="2027-06-01T10:00:00Z"))
        self.assertLines(b, [exp_line("L1", art, 1, "10.00",
                                      [disc(future, "PERCENTAGE", 10, "1.00")]),
                             exp_line("L2", art2, 1, "10.00")])

    def test_include_inactive_simulate_only(self):
        g = self.pos_group()
        art = uniq("A")
        p = promotion(uniq("Inactive"), [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[g["id"]],
                      status="INACTIVE")
        self.stack.create_promotion(p)
        items = [item("L1", art, 1, "10.00")]
        self.stack.wait_for_promotion(p["id"], basket(g["id"], items, includeInactive=True))
        with_p = [exp_line("L1", art, 1, "10.00", [disc(p, "PERCENTAGE", 10, "1.00")])]
        without = [exp_line("L1", art, 1, "10.00")]
        b = self.ev(basket(g["id"], items, includeInactive=True), simulate=True)
        self.assertLines(b, with_p)
        b = self.ev(basket(g["id"], items, includeInactive=False), simulate=True)
        self.assertLines(b, without)
        b = self.ev(basket(g["id"], items), simulate=True)
        self.assertLines(b, without)
        # evaluate ignores the flag
        b = self.ev(basket(g["id"], items, includeInactive=True))
        self.assertLines(b, without)

    def test_missed_promotions_only_when_asked(self):
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art], "minQuantity": 3}],
                                [pct_action(10, articles=[art])],
                                [item("P", art, 3, "1.00")])
        items = [item("L1", art, 1, "1.00")]
        b = self.ev(basket(g["id"], items), simulate=True)
        self.assertNotIn("missedPromotions", b)
        b = self.ev(basket(g["id"], items, includeMissedPromotions=False), simulate=True)
        self.assertNotIn("missedPromotions", b)
        b = self.ev(basket(g["id"], items, includeMissedPromotions=True))
        self.assertNotIn("missedPromotions", b)
        b = self.ev(basket(g["id"], items, includeMissedPromotions=True), simulate=True)
        mine = [m for m in b["missedPromotions"] if m["promotionId"] == p["id"]]
        self.assertEqual(len(mine), 1, b["missedPromotions"])
        self.assertEqual(mine[0]["stage"], "CONDITION")
        self.assertEqual(mine[0]["promotionName"], p["name"])
        # an applied promotion is not missed
        b = self.ev(basket(g["id"], [item("L1", art, 3, "1.00")],
                           includeMissedPromotions=True), simulate=True)
        self.assertEqual([m for m in b["missedPromotions"] if m["promotionId"] == p["id"]], [])

    # -- conditions: one pass and one fail case each -----------------------------
    def check_condition(self, cond, pass_req, fail_req, items=None):
        art = uniq("A")
        its = items or [item("L1", art, 2, "10.00")]
        art = its[0]["articleNumber"]
        g, p = self.setup_promo([cond], [pct_action(10, articles=[art])],
                                its, probe_extra=pass_req)
        for extra, applies in ((pass_req, True), (fail_req, False)):
            b = self.ev(basket(g["id"], its, **extra))
            lines = []
            for it in its:
                ds = [disc(p, "PERCENTAGE", 10, "2.00")] \
                    if applies and it["articleNumber"] == art else []
                kw = {}
                for src, dst in (("articleGroupId", "group"), ("manufacturerId", "manufacturer"),
                                 ("ean", "ean")):
                    if src in it:
                        kw[dst] = it[src]
                lines.append(exp_line(it["lineReference"], it["articleNumber"],
                                      it["quantity"], it["unitPrice"], ds, **kw))
            self.assertLines(b, lines)
        return g, p

    def test_condition_article_min_quantity(self):
        art = uniq("A")
        g, p = self.setup_promo(
            [{"type": "ARTICLE", "values": [art, uniq("B")], "minQuantity": 2}],
            [pct_action(10, articles=[art])], [item("P", art, 2, "10.00")])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00")]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00",
                                      [disc(p, "PERCENTAGE", 10, "2.00")])])
        b = self.ev(basket(g["id"], [item("L1", art, "1.999", "10.00")]))
        self.assertLines(b, [exp_line("L1", art, "1.999", "10.00")])
        # quantities of several lines of the article add up
        b = self.ev(basket(g["id"], [item("L1", art, 1, "10.00"), item("L2", art, 1, "10.00")]))
        self.assertLines(b, [exp_line("L1", art, 1, "10.00", [disc(p, "PERCENTAGE", 10, "1.00")]),
                             exp_line("L2", art, 1, "10.00", [disc(p, "PERCENTAGE", 10, "1.00")])])
        # another article does not count
        other = uniq("C")
        b = self.ev(basket(g["id"], [item("L1", other, 5, "10.00")]))
        self.assertLines(b, [exp_line("L1", other, 5, "10.00")])

    def test_condition_article_list(self):
        a, b_, c = uniq("A"), uniq("B"), uniq("C")
        # no target: the action works on the lines the conditions selected
        g, p = self.setup_promo(
            [{"type": "ARTICLE_LIST", "values": [a, b_]}],
            [{"type": "ARTICLE_LIST", "discountType": "PERCENTAGE", "value": 10}],
            [item("P", b_, 1, "10.00")])
        body = self.ev(basket(g["id"], [item("L1", b_, 2, "10.00"), item("L2", c, 1, "4.00")]))
        self.assertLines(body, [exp_line("L1", b_, 2, "10.00", [disc(p, "PERCENTAGE", 10, "2.00")]),
                                exp_line("L2", c, 1, "4.00")])
        body = self.ev(basket(g["id"], [item("L1", c, 2, "10.00")]))
        self.assertLines(body, [exp_line("L1", c, 2, "10.00")])

    def test_condition_article_group(self):
        grp = uniq("G")[:20]
        art = uniq("A")
        # pass; fail: same article in another group; fail: below minQuantity
        g, p = self.setup_promo([{"type": "ARTICLE_GROUP", "values": [grp], "minQuantity": 2}],
                                [pct_action(10, articleGroups=[grp])],
                                [item("P", art, 2, "10.00", articleGroupId=grp)])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00", articleGroupId=grp)]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00", [disc(p, "PERCENTAGE", 10, "2.00")],
                                      group=grp)])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00", articleGroupId="OTHER")]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00", group="OTHER")])
        b = self.ev(basket(g["id"], [item("L1", art, 1, "10.00", articleGroupId=grp)]))
        self.assertLines(b, [exp_line("L1", art, 1, "10.00", group=grp)])

    def test_condition_manufacturer(self):
        man = uniq("ACME")
        art = uniq("A")
        g, p = self.setup_promo([{"type": "MANUFACTURER", "values": [man]}],
                                [pct_action(10, manufacturers=[man])],
                                [item("P", art, 1, "10.00", manufacturerId=man)])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00", manufacturerId=man)]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00", [disc(p, "PERCENTAGE", 10, "2.00")],
                                      manufacturer=man)])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00", manufacturerId="OTHER")]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00", manufacturer="OTHER")])
        b = self.ev(basket(g["id"], [item("L1", art, 2, "10.00")]))
        self.assertLines(b, [exp_line("L1", art, 2, "10.00")])

    def test_condition_channel_case_insensitive(self):
        g, p = self.check_condition({"type": "CHANNEL", "values": ["ONLINE", "Mobile"]},
                                    {"channel": "online"}, {"channel": "IN_STORE"})
        art = uniq("A")
        p2 = promotion(uniq("Ch"), [{"type": "CHANNEL", "values": ["ONLINE"]}],
                       [pct_action(10, articles=[art])], pos_groups=[g["id"]])
        self.stack.create_promotion(p2)
        its = [item("L1", art, 1, "10.00")]
        self.stack.wait_for_promotion(p2["id"], basket(g["id"], its, channel="OnLiNe"))
        b = self.ev(basket(g["id"], its, channel="ONLINE"))
        self.assertLines(b, [exp_line("L1", art, 1, "10.00", [disc(p2, "PERCENTAGE", 10, "1.00")])])
        b = self.ev(basket(g["id"], its))  # no channel
        self.assertLines(b, [exp_line("L1", art, 1, "10.00")])

    def test_condition_customer_required(self):
        self.check_condition({"type": "CUSTOMER_REQUIRED"},
                             {"customer": {"customerId": "CUST-1"}}, {})

    def test_condition_customer_group(self):
        self.check_condition({"type": "CUSTOMER_GROUP", "values": ["VIP", "STAFF"]},
                             {"customer": {"customerId": "C1", "customerGroup": "STAFF"}},
                             {"customer": {"customerId": "C1", "customerGroup": "REGULAR"}})

    def test_condition_loyalty_tier(self):
        self.check_condition({"type": "LOYALTY_TIER", "values": ["GOLD"]},
                             {"customer": {"customerId": "C1",
                                           "loyalty": {"tier": "GOLD", "points": 10}}},
                             {"customer": {"customerId": "C1",
                                           "loyalty": {"tier": "SILVER", "points": 10}}})

    # -- discount types ----------------------------------------------------------
    def test_discount_percentage(self):
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art]}],
                                [pct_action(12.5, articles=[art])],
                                [item("P", art, 1, "1.00")])
        b = self.ev(basket(g["id"], [item("L1", art, 3, "19.99")]))
        # 12.5% of 59.97 = 7.49625 -> 7.50
        self.assertLines(b, [exp_line("L1", art, 3, "19.99",
                                      [disc(p, "PERCENTAGE", "12.5", "7.50")])])

    def test_discount_absolute_per_unit(self):
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art]}],
                                [{"type": "ARTICLE", "discountType": "ABSOLUTE", "value": "0.50",
                                  "target": {"articles": [art]}}],
                                [item("P", art, 1, "1.00")])
        b = self.ev(basket(g["id"], [item("L1", art, 3, "4.00")]))
        self.assertLines(b, [exp_line("L1", art, 3, "4.00", [disc(p, "ABSOLUTE", "0.50", "1.50")])])
        # never more than the unit price
        b = self.ev(basket(g["id"], [item("L1", art, 2, "0.30")]))
        self.assertLines(b, [exp_line("L1", art, 2, "0.30", [disc(p, "ABSOLUTE", "0.50", "0.60")])])

    def test_discount_unit_price(self):
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art]}],
                                [{"type": "ARTICLE", "discountType": "UNIT_PRICE", "value": 2.99,
                                  "target": {"articles": [art]}}],
                                [item("P", art, 1, "5.00")])
        b = self.ev(basket(g["id"], [item("L1", art, 4, "3.49")]))
        self.assertLines(b, [exp_line("L1", art, 4, "3.49", [disc(p, "UNIT_PRICE", "2.99", "2.00")])])

    def test_max_quantity(self):
        grp = uniq("G")[:20]
        cheap, dear, third = uniq("A"), uniq("A"), uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE_GROUP", "values": [grp]}],
                                [{"type": "ARTICLE_GROUP", "discountType": "PERCENTAGE",
                                  "value": 50, "maxQuantity": 2,
                                  "target": {"articleGroups": [grp]}}],
                                [item("P", cheap, 1, "5.00", articleGroupId=grp)])
        # one line: only 2 of 3 units discounted
        b = self.ev(basket(g["id"], [item("L1", cheap, 3, "10.00", articleGroupId=grp)]))
        self.assertLines(b, [exp_line("L1", cheap, 3, "10.00",
                                      [disc(p, "PERCENTAGE", 50, "10.00")], group=grp)])
        # the most expensive units first
        b = self.ev(basket(g["id"], [item("L1", cheap, 1, "5.00", articleGroupId=grp),
                                     item("L2", dear, 1, "8.00", articleGroupId=grp),
                                     item("L3", third, 1, "6.00", articleGroupId=grp)]))
        self.assertLines(b, [exp_line("L1", cheap, 1, "5.00", group=grp),
                             exp_line("L2", dear, 1, "8.00",
                                      [disc(p, "PERCENTAGE", 50, "4.00")], group=grp),
                             exp_line("L3", third, 1, "6.00",
                                      [disc(p, "PERCENTAGE", 50, "3.00")], group=grp)])

    def test_max_quantity_absolute(self):
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art]}],
                                [{"type": "ARTICLE", "discountType": "ABSOLUTE", "value": 1,
                                  "maxQuantity": 2, "target": {"articles": [art]}}],
                                [item("P", art, 1, "5.00")])
        b = self.ev(basket(g["id"], [item("L1", art, 5, "3.00")]))
        self.assertLines(b, [exp_line("L1", art, 5, "3.00", [disc(p, "ABSOLUTE", 1, "2.00")])])

    # -- stacking, rounding ------------------------------------------------------
    def test_stacking_additive(self):
        art = uniq("A")
        g = self.pos_group()
        cond = [{"type": "ARTICLE", "values": [art]}]
        second = promotion("B second", cond, [pct_action(10, articles=[art])],
                           pos_groups=[g["id"]], priority=20)
        first = promotion("A first", cond, [pct_action(20, articles=[art])],
                          pos_groups=[g["id"]], priority=10)
        self.stack.create_promotion(second)
        self.stack.create_promotion(first)
        its = [item("L1", art, 1, "50.00")]
        self.stack.wait_for_promotion(first["id"], basket(g["id"], its))
        self.stack.wait_for_promotion(second["id"], basket(g["id"], its))
        b = self.ev(basket(g["id"], its))
        # additive: both on the line total (10.00 + 5.00), in priority order
        self.assertLines(b, [exp_line("L1", art, 1, "50.00",
                                      [disc(first, "PERCENTAGE", 20, "10.00"),
                                       disc(second, "PERCENTAGE", 10, "5.00")])])

    def test_stacking_floored_at_zero(self):
        art = uniq("A")
        g = self.pos_group()
        cond = [{"type": "ARTICLE", "values": [art]}]
        a = promotion("six off", cond, [{"type": "ARTICLE", "discountType": "ABSOLUTE",
                                         "value": 6, "target": {"articles": [art]}}],
                      pos_groups=[g["id"]], priority=1)
        b_ = promotion("five off", cond, [{"type": "ARTICLE", "discountType": "ABSOLUTE",
                                           "value": 5, "target": {"articles": [art]}}],
                       pos_groups=[g["id"]], priority=2)
        self.stack.create_promotion(a)
        self.stack.create_promotion(b_)
        its = [item("L1", art, 1, "10.00")]
        self.stack.wait_for_promotion(a["id"], basket(g["id"], its))
        self.stack.wait_for_promotion(b_["id"], basket(g["id"], its))
        body = self.ev(basket(g["id"], its))
        line = body["lineItems"][0]
        self.assertEqual(line["lineDiscount"], money("10.00"))
        self.assertEqual(line["lineNet"], money("0.00"))
        self.assertLines(body, [exp_line("L1", art, 1, "10.00",
                                         [disc(a, "ABSOLUTE", 6, "6.00"),
                                          disc(b_, "ABSOLUTE", 5, "4.00")])])

    def test_rounding_half_up(self):
        grp = uniq("G")[:20]
        a1, a2, a3 = uniq("A"), uniq("A"), uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE_GROUP", "values": [grp]}],
                                [pct_action(10, articleGroups=[grp])],
                                [item("P", a1, 1, "1.00", articleGroupId=grp)])
        b = self.ev(basket(g["id"], [item("L1", a1, 1, "0.15", articleGroupId=grp),
                                     item("L2", a2, 1, "0.14", articleGroupId=grp),
                                     item("L3", a3, 1, "0.25", articleGroupId=grp)]))
        self.assertLines(b, [
            exp_line("L1", a1, 1, "0.15", [disc(p, "PERCENTAGE", 10, "0.02")], group=grp),
            exp_line("L2", a2, 1, "0.14", [disc(p, "PERCENTAGE", 10, "0.01")], group=grp),
            exp_line("L3", a3, 1, "0.25", [disc(p, "PERCENTAGE", 10, "0.03")], group=grp)])
        # line total itself: 3 x 0.333 kg ... quantity 0.5 x 0.15 = 0.075 -> 0.08
        b = self.ev(basket(g["id"], [item("L1", a1, "0.5", "0.15", articleGroupId=grp)]))
        self.assertLines(b, [exp_line("L1", a1, "0.500", "0.15",
                                      [disc(p, "PERCENTAGE", 10, "0.01")], group=grp)])

    # -- live changes ------------------------------------------------------------
    def test_promotion_change_and_deactivation_visible(self):
        s = self.stack
        art = uniq("A")
        g, p = self.setup_promo([{"type": "ARTICLE", "values": [art]}],
                                [pct_action(10, articles=[art])],
                                [item("L1", art, 1, "10.00")])
        req = basket(g["id"], [item("L1", art, 1, "10.00")])

        def amount_is(v):
            return lambda body: s.applied(body, p["id"]) == [("L1", D(v))]
        r = s.request("PATCH", "/api/v1/Promotions/" + p["id"],
                      {"actions": [pct_action(25, articles=[art])]})
        self.assertStatus(r, 200)
        s.wait_for_promotion(p["id"], req, check=amount_is("2.50"))
        r = s.post("/api/v1/Promotions/%s/deactivate" % p["id"])
        self.assertStatus(r, 200)
        s.wait_for_promotion(p["id"], req, present=False)
        b = self.ev(req)
        self.assertLines(b, [exp_line("L1", art, 1, "10.00")])
        r = s.post("/api/v1/Promotions/%s/activate" % p["id"])
        self.assertStatus(r, 200)
        s.wait_for_promotion(p["id"], req, check=amount_is("2.50"))
        p2 = dict(p, name="renamed")
        p2["actions"] = [pct_action(30, articles=[art])]
        r = s.request("PUT", "/api/v1/Promotions/" + p["id"], p2)
        self.assertStatus(r, 200)
        s.wait_for_promotion(p["id"], req, check=amount_is("3.00"))
        b = self.ev(req)
        self.assertLines(b, [exp_line("L1", art, 1, "10.00",
                                      [(p["id"], "renamed", "ARTICLE", "PERCENTAGE", 30, "3.00")])])
        r = s.request("DELETE", "/api/v1/Promotions/" + p["id"])
        self.assertIn(r.status, (200, 204), r)
        s.wait_for_promotion(p["id"], req, present=False)


if __name__ == "__main__":
    harness.main()
