-- rfc2544.lua: RFC 2544 (section 26.1) zero-loss throughput of the device under test for each
-- frame size, by binary search on pktgen's transmit rate. Pktgen-DPDK 23.06.x.
--
--   PF_TRIAL_S=10 PF_SIZES=64,128,256,512,1024,1280,1518 \
--     pktgen -l 0-2 -n 4 --no-pci --vdev=... -- -P -m "[1:2].0,[1:2].1" -f bench/pktgen/rfc2544.lua
--   (headless: script -qfec "pktgen ... -f bench/pktgen/rfc2544.lua" /dev/null)
--
-- For each size: warm-up traffic (learning frames, RFC 2544 section 23) at PF_WARMUP_RATE %
-- for PF_WARMUP_S, then trials of PF_TRIAL_S seconds at a rate that starts at PF_RATE_MAX %
-- and halves the interval each time (pass: frames lost <= PF_LOSS_TOL % of frames sent, loss
-- counted from pktgen's port counters: opackets of the tx ports minus ipackets of the rx
-- ports), until the interval is narrower than PF_RESOLUTION %. Optional PF_CONFIRM_S: one
-- more trial at the result (RFC 2544 asks for 60 s). PF_LATENCY=1 runs that trial (of
-- PF_CONFIRM_S, else PF_TRIAL_S) with pktgen's latency probes on every tx and rx port and
-- reports the latency the rx ports measured (RFC 2544 section 26.2: latency at the
-- throughput rate).
--
-- Output: a table on pktgen's console and in <PF_OUT>-rfc2544.txt, one CSV row per size in
-- <PF_OUT>-rfc2544.csv and one per trial in <PF_OUT>-rfc2544-trials.csv. See README.md for
-- every variable and the lab wiring.

-- pflib.lua sits next to this script (or set PF_LIB to its path).
local here = debug and string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local pf = dofile(os.getenv("PF_LIB") or (here .. "pflib.lua"))

local cfg = pf.config()
local sizes = pf.list("PF_SIZES", "64,128,256,512,1024,1280,1518")
local confirm_ms = math.floor(pf.num("PF_CONFIRM_S", 0) * 1000)

pf.open_log(cfg.out .. "-rfc2544.txt")
if not pf.prepare(cfg) then
    pf.finish(cfg)
    return
end
pf.setup_single(cfg)
local mbps = pf.link_mbps(cfg.tx_list[1]) or 0
local ntx = #cfg.tx_list

local results = pf.csv(cfg.out .. "-rfc2544.csv", {
    "frame_bytes", "zero_loss_rate_pct", "tx_mpps", "rx_mpps", "l1_gbps", "l2_gbps",
    "line_rate_mpps", "frames_sent", "frames_lost", "loss_pct", "trials", "gen_rx_drops",
    table.unpack(pf.LATENCY_COLUMNS),
})
local per_trial = pf.csv(cfg.out .. "-rfc2544-trials.csv", {
    "frame_bytes", "iteration", "rate_pct", "frames_sent", "frames_received", "loss_pct",
    "tx_mpps", "rx_mpps", "pass", "gen_rx_drops",
})

pf.say("RFC 2544 throughput: trials of %g s, loss tolerance %g %%, resolution %g %%, warm-up %g s at %g %%",
    cfg.trial_ms / 1000, cfg.loss_tol, cfg.resolution, cfg.warmup_ms / 1000, cfg.warmup_rate)

local rows = {}
for _, size in ipairs(sizes) do
    pktgen.set(cfg.tx, "size", size)
    pf.warmup(cfg)
    local best, trials = pf.search(cfg, function(t)
        pf.say("  %5d B  rate %7.3f %%  sent %12d  received %12d  loss %8.4f %%  %s",
            size, t.rate, t.sent, t.received, t.loss_pct, t.pass and "pass" or "FAIL")
        per_trial.row({ size, t.iter, string.format("%.3f", t.rate), t.sent, t.received,
            string.format("%.6f", t.loss_pct), string.format("%.4f", t.tx_pps / 1e6),
            string.format("%.4f", t.rx_pps / 1e6), t.pass and 1 or 0, t.gen_rx_drops })
    end)
    local lat = nil
    if best ~= nil and (confirm_ms > 0 or cfg.latency) then
        local ms = confirm_ms > 0 and confirm_ms or cfg.trial_ms
        local c
        if cfg.latency then
            c, lat = pf.latency_trial(cfg, best.rate, ms)
        else
            local keep = cfg.trial_ms
            cfg.trial_ms = ms
            c = pf.trial(cfg, best.rate)
            cfg.trial_ms = keep
        end
        c.pass = c.sent > 0 and c.loss_pct <= cfg.loss_tol
        pf.say("  %5d B  confirm %7.3f %% for %g s: loss %8.4f %%  %s", size, c.rate, ms / 1000,
            c.loss_pct, c.pass and "pass" or "FAIL (reported as not confirmed)")
        if cfg.latency then
            pf.say("  %5d B  %s", size, pf.latency_text(lat))
        end
        if c.pass then
            best = c
        else
            best.unconfirmed = true
        end
    end
    local row
    if best == nil then
        row = { size = size, rate = 0, tx = 0, rx = 0, sent = 0, lost = 0, loss = 0 }
    else
        row = { size = size, rate = best.rate, tx = best.tx_pps, rx = best.rx_pps,
                sent = best.sent, lost = best.lost, loss = best.loss_pct,
                unconfirmed = best.unconfirmed }
    end
    row.line = mbps > 0 and pf.line_rate_pps(mbps, size) * ntx or 0
    row.lat = lat
    row.trials = #trials
    rows[#rows + 1] = row
    local cells = { size, string.format("%.3f", row.rate), string.format("%.4f", row.tx / 1e6),
        string.format("%.4f", row.rx / 1e6), string.format("%.3f", row.rx * (size + 20) * 8 / 1e9),
        string.format("%.3f", row.rx * size * 8 / 1e9), string.format("%.4f", row.line / 1e6),
        row.sent, row.lost, string.format("%.6f", row.loss), row.trials,
        best and best.gen_rx_drops or 0 }
    for _, v in ipairs(pf.latency_cells(lat)) do
        cells[#cells + 1] = v
    end
    results.row(cells)
end
results.close()
per_trial.close()

pf.say("")
pf.say("RFC 2544 zero-loss throughput (loss tolerance %g %%), %d tx port(s), link %s Mb/s",
    cfg.loss_tol, ntx, tostring(mbps))
pf.say("%6s %9s %10s %9s %9s %11s %8s %s", "frame", "rate %", "Mpps", "Gb/s L1", "Gb/s L2",
    "line Mpps", "trials", "latency avg/max us")
for _, r in ipairs(rows) do
    pf.say("%6d %9.3f %10.4f %9.3f %9.3f %11.4f %8d %s%s", r.size, r.rate, r.rx / 1e6,
        r.rx * (r.size + 20) * 8 / 1e9, r.rx * r.size * 8 / 1e9, r.line / 1e6, r.trials,
        r.lat and string.format("%.1f/%.1f", r.lat.avg, r.lat.max) or "-",
        r.unconfirmed and "  (not confirmed)" or "")
end
pf.say("results: %s-rfc2544.csv (per trial: %s-rfc2544-trials.csv)", cfg.out, cfg.out)
pf.finish(cfg)
