-- flows.lua: many flows through the device under test, with pktgen's range mode varying the
-- source address and source port of every packet: a realistic load for the ACL (classify) and
-- NAT stages, which keep per-flow state. Pktgen-DPDK 23.06.x.
--
--   PF_SRC_COUNT=1021 PF_SPORT_COUNT=64 PF_DURATION_S=30 \
--     pktgen ... -- -P -m "[1:2].0,[1:2].1" -f bench/pktgen/flows.lua
--
-- Range mode increments each field by its step on every packet and wraps it at its max, so
-- source address and source port advance together: the number of distinct flows is
-- lcm(PF_SRC_COUNT, PF_SPORT_COUNT). The defaults (1021, a prime, and 64) give 65,344 flows,
-- about 64k NAT sessions. Addresses start at PF_SRC_BASE (10.0.0.1: inside hosts of the NAT),
-- ports at PF_SPORT_BASE (1024); destination PF_DST_IP:PF_DPORT; frame size PF_SIZE.
--
-- Runs PF_WARMUP_S at PF_WARMUP_MPPS (0.1 Mpps: sessions get created), then PF_DURATION_S at
-- PF_MPPS (Mpps in all; unset: flat out, pktgen at 100 %) and reports, every second, what was sent and received (CSV <PF_OUT>-flows.csv), then the
-- totals and the loss (CSV <PF_OUT>-flows-total.csv). PF_SEARCH=1 instead runs the RFC 2544
-- search of rfc2544.lua (flat-out trial, then a search on the measured offered rate; every trial
-- in <PF_OUT>-flows-trials.csv) on this flow mix for the one frame size. PF_LATENCY=1:
-- pktgen's latency probes during the run (with PF_SEARCH=1: one more trial at the zero-loss
-- rate), as in rfc2544.lua; columns latency_* of the totals CSV.

-- pflib.lua sits next to this script (or set PF_LIB to its path).
local here = debug and string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local pf = dofile(os.getenv("PF_LIB") or (here .. "pflib.lua"))

local cfg = pf.config()
local size = pf.num("PF_SIZE", 64)
local mpps_asked = pf.num("PF_MPPS", 0)
if pf.env("PF_RATE", nil) ~= nil then
    error("PF_RATE is gone for flows.lua: PF_MPPS (absolute, measured; unset = flat out)")
end
local duration_s = pf.num("PF_DURATION_S", 30)
local src_base = pf.env("PF_SRC_BASE", "10.0.0.1")
local src_count = pf.num("PF_SRC_COUNT", 1021)
local sport_base = pf.num("PF_SPORT_BASE", 1024)
local sport_count = pf.num("PF_SPORT_COUNT", 64)
local dst_ip = string.gsub(cfg.dst_ip, "/.*", "")
local search = pf.env("PF_SEARCH", "0") ~= "0"

local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end

-- a.b.c.d + n (no wrap past 255.255.255.255)
local function ip_add(ip, n)
    local a, b, c, d = string.match(ip, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    assert(a, "bad IPv4 address " .. ip)
    local v = ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d) + n
    return string.format("%d.%d.%d.%d", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end

assert(src_count >= 1 and sport_count >= 1, "PF_SRC_COUNT and PF_SPORT_COUNT must be >= 1")
assert(sport_base + sport_count - 1 <= 65535, "source ports beyond 65535")
local flows = src_count * sport_count // gcd(src_count, sport_count)

pf.open_log(cfg.out .. "-flows.txt")
if not pf.prepare(cfg) then
    pf.finish(cfg)
    return
end
pf.setup_single(cfg)
cfg.frame_bytes = size

-- The range template: UDP, one frame size, source address and port varying per packet.
local tx = cfg.tx
pktgen.range.ip_proto(tx, "udp")
if cfg.dst_mac ~= nil then
    pktgen.range.dst_mac(tx, "start", cfg.dst_mac)
end
pktgen.range.src_ip(tx, "start", src_base)
pktgen.range.src_ip(tx, "min", src_base)
pktgen.range.src_ip(tx, "max", ip_add(src_base, src_count - 1))
pktgen.range.src_ip(tx, "inc", "0.0.0.1")
pktgen.range.dst_ip(tx, "start", dst_ip)
pktgen.range.dst_ip(tx, "min", dst_ip)
pktgen.range.dst_ip(tx, "max", dst_ip)
pktgen.range.dst_ip(tx, "inc", "0.0.0.0")
pktgen.range.src_port(tx, "start", sport_base)
pktgen.range.src_port(tx, "min", sport_base)
pktgen.range.src_port(tx, "max", sport_base + sport_count - 1)
pktgen.range.src_port(tx, "inc", 1)
pktgen.range.dst_port(tx, "start", cfg.dport)
pktgen.range.dst_port(tx, "min", cfg.dport)
pktgen.range.dst_port(tx, "max", cfg.dport)
pktgen.range.dst_port(tx, "inc", 0)
pktgen.range.ttl(tx, "start", 64)
pktgen.range.ttl(tx, "min", 64)
pktgen.range.ttl(tx, "max", 64)
pktgen.range.ttl(tx, "inc", 0)
pktgen.range.pkt_size(tx, "start", size)
pktgen.range.pkt_size(tx, "min", size)
pktgen.range.pkt_size(tx, "max", size)
pktgen.range.pkt_size(tx, "inc", 0)
pktgen.set(tx, "size", size)
pktgen.set_range(tx, "on")

pf.say("flows: %d source addresses from %s x %d source ports from %d = %d flows -> %s:%d, %d B",
    src_count, src_base, sport_count, sport_base, flows, dst_ip, cfg.dport, size)
pf.warmup(cfg)

if search then
    local trials_csv = pf.csv(cfg.out .. "-flows-trials.csv", pf.TRIAL_COLUMNS)
    local best, _, info = pf.search(cfg, function(t)
        pf.say("  %s", pf.trial_text(t))
        trials_csv.row(pf.trial_cells(cfg, t))
    end)
    trials_csv.close()
    if best then
        pf.say("throughput with %d flows, %d B (%s, loss %.4f %%, tolerance %g %%): offered %.4f " ..
            "Mpps, forwarded %.4f Mpps (flat out: offered %.4f, forwarded %.4f Mpps)", flows, size,
            info.status, best.loss_pct, cfg.loss_tol, best.tx_pps / 1e6, best.rx_pps / 1e6,
            info.max_offered_pps / 1e6, info.max_forwarding_pps / 1e6)
        if cfg.latency then
            local _, lat = pf.latency_trial(cfg, best.asked_pps and best.tx_pps or nil)
            pf.say("%d flows at %.4f Mpps: %s", flows, best.tx_pps / 1e6, pf.latency_text(lat))
        end
    else
        pf.say("throughput with %d flows, %d B: none (no valid trial passed)", flows, size)
    end
    pf.finish(cfg)
    return
end

local csv = pf.csv(cfg.out .. "-flows.csv",
    { "second", "tx_mpps", "rx_mpps", "frames_sent", "frames_received", "gen_rx_drops" })
if cfg.latency then
    pktgen.clr() -- latency statistics of this run alone (the counters are read after a settle)
    pf.latency(cfg, true)
end
local rate = pf.rate_pct(cfg, mpps_asked > 0 and mpps_asked * 1e6 or nil)
pktgen.set(tx, "rate", string.format("%.4f", rate))
pktgen.delay(cfg.settle_ms)
local c_tx0, c_rx0 = pf.counters(cfg.tx_list), pf.counters(cfg.rx_list)
local p_tx, p_rx = c_tx0, c_rx0
pktgen.start(tx)
-- One row per second; pktgen refreshes its counters once a second, so rows are approximate
-- per second but the totals (read after the stop and a settle) are exact.
for s = 1, math.floor(duration_s) do
    pktgen.delay(1000)
    local a, b = pf.counters(cfg.tx_list), pf.counters(cfg.rx_list)
    csv.row({ s, string.format("%.4f", (a.opackets - p_tx.opackets) / 1e6),
        string.format("%.4f", (b.ipackets - p_rx.ipackets) / 1e6), a.opackets - c_tx0.opackets,
        b.ipackets - c_rx0.ipackets, b.imissed + b.rx_nombuf - c_rx0.imissed - c_rx0.rx_nombuf })
    p_tx, p_rx = a, b
end
pktgen.stop(tx)
pktgen.delay(cfg.settle_ms)
local c_tx1, c_rx1 = pf.counters(cfg.tx_list), pf.counters(cfg.rx_list)
csv.close()
local lat = nil
if cfg.latency then
    lat = pf.latency_stats(cfg)
    pf.latency(cfg, false)
end
local sent = c_tx1.opackets - c_tx0.opackets
local got = c_rx1.ipackets - c_rx0.ipackets
local loss = sent > 0 and 100 * (sent - got) / sent or 0
pf.say("%d flows at %g %% for %g s: sent %d (%.4f Mpps), received %d (%.4f Mpps), lost %d (%.4f %%)",
    flows, rate, duration_s, sent, sent / duration_s / 1e6, got, got / duration_s / 1e6,
    sent - got, loss)
if cfg.latency then
    pf.say("%d flows at %g %%: %s", flows, rate, pf.latency_text(lat))
end
local total = pf.csv(cfg.out .. "-flows-total.csv", { "flows", "frame_bytes", "asked_mpps", "rate_pct",
    "seconds", "frames_sent", "frames_received", "loss_pct", "tx_mpps", "rx_mpps",
    "gen_rx_drops", table.unpack(pf.LATENCY_COLUMNS) })
local cells = { flows, size, mpps_asked > 0 and string.format("%.4f", mpps_asked) or "flat-out",
    string.format("%.4f", rate), duration_s, sent, got,
    string.format("%.6f", loss), string.format("%.4f", sent / duration_s / 1e6),
    string.format("%.4f", got / duration_s / 1e6),
    c_rx1.imissed + c_rx1.rx_nombuf + c_rx1.ierrors - c_rx0.imissed - c_rx0.rx_nombuf - c_rx0.ierrors }
for _, v in ipairs(pf.latency_cells(lat)) do
    cells[#cells + 1] = v
end
total.row(cells)
total.close()
pf.say("per second: %s-flows.csv, totals: %s-flows-total.csv", cfg.out, cfg.out)
pf.finish(cfg)
