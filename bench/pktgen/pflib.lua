-- pflib.lua: shared helpers of the pollfwd Pktgen-DPDK lab scripts (rfc2544.lua, flows.lua,
-- imix.lua). Loaded with dofile() from the script's own directory; returns a table.
--
-- Target: Pktgen-DPDK 23.06.x (the line that builds against DPDK 22.11). Pktgen calls used
-- (all of app/lpktgenlib.c): pktgen.set(ports, "size"|"count"|"rate"|"burst"|"sport"|"dport"
-- |"seq_cnt", v), pktgen.start(ports), pktgen.stop(ports), pktgen.delay(ms) (an integer:
-- luaL_checkinteger), pktgen.clr() (before a latency measurement),
-- pktgen.portStats(ports, "port"), pktgen.linkState(ports), pktgen.screen("on"|"off"),
-- pktgen.set_ipaddr(ports, "src"|"dst", ip), pktgen.set_mac(ports, "src"|"dst", mac),
-- pktgen.set_proto(ports, "udp"), pktgen.set_type(ports, "ipv4"), pktgen.latency(ports, s),
-- pktgen.pktStats(ports), pktgen.quit().
--
-- Facts about that pktgen that shape this code:
-- * print() goes to pktgen's console: results are also written to files with io.open.
-- * Port counters are refreshed once a second: read them >= 1.1 s after traffic changed.
-- * Link state is refreshed only while the screen is on: wait for links, then screen off
--   (with the screen off, linkState keeps returning what it last saw).
-- * "rate" is a percent of the link speed, as a string; fractions are allowed. memif ports
--   report 100 Gb/s, so 100 % there means "as fast as the generator can", and any percentage
--   above the generator's ceiling is the same flat-out trial. Below it the pacing is off by
--   10-21 % (measured with 23.06.1 on memif). So the scripts ask in frames per second, convert
--   to a percentage corrected by the pacing error learnt so far (cfg.rate_gain), and judge every
--   trial by the offered rate they measured (M.trial).

local M = {}

-- Parameters from the environment ---------------------------------------------------------

function M.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

function M.num(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    local n = tonumber(v)
    if n == nil then
        error(string.format("%s=%q is not a number", name, v))
    end
    return n
end

-- "64,128 1518" -> {64, 128, 1518}
function M.list(name, default)
    local out = {}
    for item in string.gmatch(M.env(name, default), "[^,%s]+") do
        local n = tonumber(item)
        if n == nil then
            error(string.format("%s: %q is not a number", name, item))
        end
        out[#out + 1] = n
    end
    return out
end

-- "0,1" or "0-1" -> {0, 1}
function M.ports(spec)
    local out = {}
    for item in string.gmatch(spec, "[^,%s]+") do
        local a, b = string.match(item, "^(%d+)%-(%d+)$")
        if a then
            for p = tonumber(a), tonumber(b) do
                out[#out + 1] = p
            end
        else
            out[#out + 1] = assert(tonumber(item), "bad port " .. item)
        end
    end
    return out
end

-- Output ------------------------------------------------------------------------------------

M.log_file = nil

function M.say(fmt, ...)
    local line = string.format(fmt, ...)
    print(line)
    if M.log_file then
        M.log_file:write(line, "\n")
        M.log_file:flush()
    end
end

function M.open_log(path)
    M.log_file = assert(io.open(path, "w"))
end

-- A CSV file written row by row (flushed, so a long run leaves partial results).
function M.csv(path, header)
    local f = assert(io.open(path, "w"))
    f:write(table.concat(header, ","), "\n")
    f:flush()
    return {
        row = function(values)
            local cells = {}
            for i, v in ipairs(values) do
                cells[i] = tostring(v)
            end
            f:write(table.concat(cells, ","), "\n")
            f:flush()
        end,
        close = function()
            f:close()
        end,
    }
end

-- Ports and counters ------------------------------------------------------------------------

-- Link speed in Mb/s of `port` from pktgen.linkState ("<UP-10000-FD>"), nil while down.
function M.link_mbps(port)
    local st = pktgen.linkState(tostring(port))[port]
    if st == nil or not string.find(st, "UP") then
        return nil
    end
    return tonumber(string.match(st, "(%d+)"))
end

-- Waits (screen on: link state refreshes only then) until every port is up.
function M.wait_links(ports, seconds)
    pktgen.screen("on")
    local waited = 0
    while true do
        local down = {}
        for _, p in ipairs(ports) do
            if M.link_mbps(p) == nil then
                down[#down + 1] = tostring(p)
            end
        end
        if #down == 0 then
            return true
        end
        if waited >= seconds * 1000 then
            M.say("links still down after %d s: port(s) %s", seconds, table.concat(down, ","))
            return false
        end
        pktgen.delay(500)
        waited = waited + 500
    end
end

-- Sum of counter fields over ports, from pktgen.portStats(..., "port"). obytes/ibytes count
-- frames without their 4-byte FCS (a 64-byte frame counts 60), as DPDK's port statistics do.
local FIELDS = { "opackets", "ipackets", "obytes", "ibytes", "oerrors", "ierrors", "imissed",
    "rx_nombuf" }

function M.counters(ports)
    local all = pktgen.portStats("all", "port")
    local sum = {}
    for _, f in ipairs(FIELDS) do
        sum[f] = 0
    end
    for _, p in ipairs(ports) do
        local st = all[p]
        if st == nil then
            error("pktgen has no port " .. p)
        end
        for _, f in ipairs(FIELDS) do
            sum[f] = sum[f] + (st[f] or 0)
        end
    end
    return sum
end

local function delta(a, b)
    local d = {}
    for _, f in ipairs(FIELDS) do
        d[f] = b[f] - a[f]
    end
    return d
end

-- Frames per second at line rate for frames of `size` bytes (incl. FCS) on a `mbps` link:
-- each frame also takes 20 bytes of preamble, start delimiter and inter-frame gap.
function M.line_rate_pps(mbps, size)
    return mbps * 1e6 / ((size + 20) * 8)
end

M.FCS = 4

-- Mean frame size incl. FCS from byte and frame counts (nil without frames).
function M.mean_frame(bytes, frames)
    if frames <= 0 then
        return nil
    end
    return bytes / frames + M.FCS
end

-- One trial ------------------------------------------------------------------------------------
-- Offers `pps` frames per second in all (split over the tx ports; nil = flat out: pktgen's
-- 100 %) for cfg.trial_ms and counts what the rx ports received. pktgen takes a rate in percent
-- of the link speed, so pps becomes a percentage of the line rate of cfg.frame_bytes frames,
-- divided by cfg.rate_gain: what pktgen really sent per frame asked, learnt from the previous
-- trials (pktgen 23.06.1 on memif sends ~10 % more than asked at 64 B, ~20 % more with a
-- pcap). The counters are read as differences around the trial, each read >= settle_ms
-- (>= 1.1 s) after the traffic changed, so leftovers of the previous trial cannot leak in.
-- The offered rate is measured (tx frames / trial time): a trial that offered less than
-- cfg.offered_min (98 %) of the asked rate is invalid: it measures the generator, not the DUT.
-- pktgen's rate (percent of link speed) for `pps` frames per second in all (nil: 100).
function M.rate_pct(cfg, pps)
    if pps == nil then
        return 100
    end
    local line = M.line_rate_pps(cfg.mbps, cfg.frame_bytes) * #cfg.tx_list
    return math.min(100, 100 * pps / line / cfg.rate_gain)
end

function M.trial(cfg, pps)
    local txs, rxs = cfg.tx_list, cfg.rx_list
    local pct = M.rate_pct(cfg, pps)
    pktgen.set(cfg.tx, "rate", string.format("%.4f", pct))
    pktgen.delay(cfg.settle_ms)
    local tx0, rx0 = M.counters(txs), M.counters(rxs)
    pktgen.start(cfg.tx)
    pktgen.delay(cfg.trial_ms)
    pktgen.stop(cfg.tx)
    pktgen.delay(cfg.settle_ms)
    local tx1, rx1 = M.counters(txs), M.counters(rxs)
    local t, r = delta(tx0, tx1), delta(rx0, rx1)
    local sent, got = t.opackets, r.ipackets
    local secs = cfg.trial_ms / 1000
    local res = {
        asked_pps = pps, -- nil: flat out
        rate = pct,
        seconds = secs,
        sent = sent,
        received = got,
        lost = sent - got,
        loss_pct = sent > 0 and 100 * (sent - got) / sent or 0,
        tx_pps = sent / secs,
        rx_pps = got / secs,
        obytes = t.obytes,
        ibytes = r.ibytes,
        tx_mean = M.mean_frame(t.obytes, sent),
        rx_mean = M.mean_frame(r.ibytes, got),
        -- Frames the generator itself could not take in are not the DUT's loss: report them.
        gen_rx_drops = r.imissed + r.rx_nombuf + r.ierrors,
        gen_tx_errors = t.oerrors,
    }
    res.valid = sent > 0 and (pps == nil or res.tx_pps >= cfg.offered_min * pps)
    res.pass = res.valid and res.loss_pct <= cfg.loss_tol
    -- Learn pktgen's rate error from a paced trial that reached the asked rate.
    if res.valid and pps ~= nil and pct < 100 then
        cfg.rate_gain = cfg.rate_gain * res.tx_pps / pps
    end
    return res
end

-- A trial at `pps`, repeated up to cfg.retries times while it is invalid (offered rate short
-- of the asked one). Every attempt goes to on_trial. Returns the last attempt.
function M.checked_trial(cfg, pps, kind, on_trial)
    local t
    local gain = cfg.rate_gain
    for attempt = 0, cfg.retries do
        t = M.trial(cfg, pps)
        t.kind = attempt == 0 and kind or (kind .. "-retry")
        if on_trial then
            on_trial(t)
        end
        if t.valid then
            return t
        end
        -- Short of the asked rate: ask pktgen for more (unless it already ran at 100 %).
        if t.rate >= 100 or t.sent == 0 then
            break
        end
        cfg.rate_gain = cfg.rate_gain * math.max(t.tx_pps / pps, 0.5)
    end
    cfg.rate_gain = gain -- what it learnt from trials the generator could not offer is wrong
    return t
end

-- RFC 2544 section 26.1 throughput, in frames per second:
-- 1. one flat-out trial (pktgen at 100 %): the maximum offered rate the generator reaches and
--    the maximum forwarding rate of the DUT (frames received per second);
-- 2. if nothing was lost (<= loss_tol %), the DUT forwarded everything the generator could
--    send: the result is that trial, flagged generator-bound (the DUT's throughput is at least
--    that);
-- 3. otherwise a binary search on the offered rate between 0 and the maximum offered rate,
--    starting at the maximum forwarding rate, every trial checked (offered >= 98 % of asked,
--    retried else), bounds moved by the MEASURED offered rates, until the interval is narrower
--    than the resolution: cfg.resolution percent of the maximum forwarding rate.
-- Returns the best passing trial (nil if none), all trials and a summary table (status: ok,
-- generator-bound, unconverged, none, no-traffic).
function M.search(cfg, on_trial)
    local trials = {}
    local iter = 0
    local function note(t)
        iter = iter + 1
        t.iter = iter
        trials[#trials + 1] = t
        if on_trial then
            on_trial(t)
        end
    end
    local flat = M.trial(cfg, nil)
    flat.kind = "flat-out"
    note(flat)
    local info = { max_offered_pps = flat.tx_pps, max_forwarding_pps = flat.rx_pps,
        resolution_pps = cfg.resolution / 100 * flat.rx_pps, status = "none", flat = flat }
    if not flat.valid then
        info.status = "no-traffic"
        return nil, trials, info
    end
    if flat.pass then
        info.status = "generator-bound"
        return flat, trials, info
    end
    local lo, hi = 0, flat.tx_pps
    local best = nil
    local target = flat.rx_pps
    while iter < cfg.max_iter do
        if target < info.resolution_pps or target <= 0 then
            break
        end
        local t = M.checked_trial(cfg, target, "search", note)
        if not t.valid then
            hi = math.min(hi, target) -- the generator cannot offer this rate: not testable
        elseif t.pass then
            lo = math.max(lo, t.tx_pps)
            if best == nil or t.tx_pps > best.tx_pps then
                best = t
            end
        else
            hi = math.min(hi, t.tx_pps)
        end
        if hi - lo <= info.resolution_pps then
            break
        end
        target = (lo + hi) / 2
    end
    info.lo_pps, info.hi_pps = lo, hi
    if best == nil then
        info.status = "none"
    elseif hi - lo > info.resolution_pps then
        info.status = "unconverged" -- PF_MAX_ITER trials ran out: the result is a lower bound
    else
        info.status = "ok"
    end
    return best, trials, info
end

-- CSV columns and cells of one trial (every script's per-trial file).
M.TRIAL_COLUMNS = { "iteration", "kind", "asked_mpps", "rate_pct", "offered_mpps",
    "forwarded_mpps", "frames_sent", "frames_received", "loss_pct", "loss_tol_pct", "valid",
    "pass", "tx_mean_bytes", "rx_mean_bytes", "gen_rx_drops" }

local function f4(v)
    return v and string.format("%.4f", v) or ""
end

function M.trial_cells(cfg, t)
    return { t.iter or "", t.kind or "", t.asked_pps and f4(t.asked_pps / 1e6) or "flat-out",
        f4(t.rate), f4(t.tx_pps / 1e6), f4(t.rx_pps / 1e6), t.sent, t.received,
        string.format("%.6f", t.loss_pct), cfg.loss_tol, t.valid and 1 or 0, t.pass and 1 or 0,
        t.tx_mean and string.format("%.1f", t.tx_mean) or "",
        t.rx_mean and string.format("%.1f", t.rx_mean) or "", t.gen_rx_drops }
end

function M.trial_text(t)
    return string.format("%-12s asked %s  offered %8.4f Mpps  forwarded %8.4f Mpps  loss %8.4f %%  %s",
        t.kind or "", t.asked_pps and string.format("%8.4f Mpps", t.asked_pps / 1e6) or "flat-out     ",
        t.tx_pps / 1e6, t.rx_pps / 1e6, t.loss_pct,
        (not t.valid) and "INVALID (offered < 98 % of asked)" or (t.pass and "pass" or "FAIL"))
end

-- Latency -------------------------------------------------------------------------------------
-- Pktgen's latency probes (PF_LATENCY=1). How 23.06 measures: a port with latency enabled
-- sends timestamped probe frames while it transmits; a port with latency enabled checks every
-- frame it receives for a probe and keeps the statistics (pktStats(p).latency) of the probes
-- IT received. The flag is per port and checked on both sides, so it must be on for the
-- sending AND the receiving ports, and the figures are read from the receiving ports
-- (pktgen's own scripts/latency-samples.lua does the same). pktgen.clr() zeroes them (23.06's
-- pktgen_clear_stats clears port counters and latency statistics), so a measurement is
-- clr -> enable -> traffic -> read -> disable. (Releases before 23.x report other fields;
-- they are not supported.)

-- Turns the probes on or off on every port of the run (tx and rx).
function M.latency(cfg, on)
    if pktgen.latency == nil then
        error("this pktgen has no pktgen.latency (PF_LATENCY=1 needs it)")
    end
    for _, p in ipairs(cfg.all_list) do
        pktgen.latency(tostring(p), on and "enable" or "disable")
    end
end

-- Latency of the probes that came back on the receiving ports: {avg, min, max, n} in
-- microseconds (the worst port's figures when several receive), nil if no probe came back.
function M.latency_stats(cfg)
    local st = pktgen.pktStats(cfg.rx)
    local agg = nil
    for _, p in ipairs(cfg.rx_list) do
        local s = st[p]
        local v = nil
        if s ~= nil and type(s.latency) == "table" and s.latency.avg_us ~= nil then
            local l = s.latency
            v = { avg = l.avg_us, min = l.min_us, max = l.max_us, n = l.num_pkts or 0 }
        end
        if v ~= nil and v.n > 0 and (agg == nil or v.max > agg.max) then
            agg = v
        end
    end
    return agg
end

-- A trial (M.trial, at pps frames/s, nil = flat out) with latency probes: returns the trial and its latency (or nil). The
-- clear comes first, so the counters the trial reads (>= settle_ms later) are already the
-- cleared ones and the latency covers this trial alone.
function M.latency_trial(cfg, pps, trial_ms)
    pktgen.clr()
    M.latency(cfg, true)
    local keep = cfg.trial_ms
    cfg.trial_ms = trial_ms or cfg.trial_ms
    local t = M.trial(cfg, pps)
    cfg.trial_ms = keep
    local lat = M.latency_stats(cfg)
    M.latency(cfg, false)
    return t, lat
end

-- CSV cells and console text of a latency result.
M.LATENCY_COLUMNS = { "latency_avg_us", "latency_min_us", "latency_max_us", "latency_samples" }

function M.latency_cells(lat)
    if lat == nil then
        return { "", "", "", 0 }
    end
    return { string.format("%.2f", lat.avg), string.format("%.2f", lat.min),
        string.format("%.2f", lat.max), lat.n }
end

function M.latency_text(lat)
    if lat == nil then
        return "latency: no probe came back"
    end
    return string.format("latency avg %.2f us, min %.2f us, max %.2f us (%d probes)",
        lat.avg, lat.min, lat.max, lat.n)
end

-- Common setup of the single-packet template on the sending ports: UDP over IPv4.
function M.setup_single(cfg)
    pktgen.set_type(cfg.tx, "ipv4")
    pktgen.set_proto(cfg.tx, "udp")
    pktgen.set_ipaddr(cfg.tx, "src", cfg.src_ip)
    pktgen.set_ipaddr(cfg.tx, "dst", cfg.dst_ip)
    if cfg.dst_mac ~= nil then
        pktgen.set_mac(cfg.tx, "dst", cfg.dst_mac)
    end
    pktgen.set(cfg.tx, "sport", cfg.sport)
    pktgen.set(cfg.tx, "dport", cfg.dport)
    pktgen.set(cfg.tx, "burst", cfg.burst)
    pktgen.set(cfg.tx, "count", 0) -- continuous until stop
end

-- The parameters every script shares (environment variables, see README.md).
function M.config()
    local cfg = {
        tx = M.env("PF_TX_PORTS", "0"),
        rx = M.env("PF_RX_PORTS", "1"),
        trial_ms = math.floor(M.num("PF_TRIAL_S", 10) * 1000),
        warmup_ms = math.floor(math.min(M.num("PF_WARMUP_S", 2), 60) * 1000),
        warmup_pps = M.num("PF_WARMUP_MPPS", 0.1) * 1e6,
        settle_ms = math.max(1100, math.floor(M.num("PF_SETTLE_S", 2) * 1000)),
        loss_tol = M.num("PF_LOSS_TOL", 0),
        resolution = M.num("PF_RESOLUTION", 0.5),
        offered_min = M.num("PF_OFFERED_MIN", 98) / 100,
        retries = M.num("PF_RETRIES", 1),
        rate_gain = 1.0,
        mbps = nil,        -- link speed of the first tx port (M.prepare)
        frame_bytes = 64,  -- frame size incl. FCS the rate percentages are computed for
        max_iter = M.num("PF_MAX_ITER", 16),
        link_wait_s = M.num("PF_LINK_WAIT_S", 30),
        src_ip = M.env("PF_SRC_IP", "198.18.0.1/24"),
        dst_ip = M.env("PF_DST_IP", "198.18.1.1"),
        dst_mac = M.env("PF_DST_MAC", nil),
        sport = M.num("PF_SPORT", 1024),
        dport = M.num("PF_DPORT", 9),
        burst = M.num("PF_BURST", 32),
        out = M.env("PF_OUT", "pollfwd-pktgen"),
        quit = M.env("PF_QUIT", "1") ~= "0",
        latency = M.env("PF_LATENCY", "0") ~= "0",
    }
    cfg.tx_list = M.ports(cfg.tx)
    cfg.rx_list = M.ports(cfg.rx)
    local all = {}
    for _, p in ipairs(cfg.tx_list) do
        all[#all + 1] = p
    end
    for _, p in ipairs(cfg.rx_list) do
        all[#all + 1] = p
    end
    cfg.all_list = all
    for _, old in ipairs({ "PF_WARMUP_RATE", "PF_RATE_MAX", "PF_RATE_MIN" }) do
        if M.env(old, nil) ~= nil then
            error(old .. " is gone: the warm-up rate is PF_WARMUP_MPPS (absolute), the search " ..
                "starts from a measured flat-out trial (README.md)")
        end
    end
    if cfg.resolution <= 0 then
        error("PF_RESOLUTION must be > 0")
    end
    return cfg
end

-- Waits for links, warms the DUT up (RFC 2544 section 23: learning frames, so that ARP,
-- NAT sessions and other state exist before the first counted trial) and turns the screen
-- off for the measurement.
function M.prepare(cfg)
    if not M.wait_links(cfg.all_list, cfg.link_wait_s) then
        return false
    end
    local mbps = M.link_mbps(cfg.tx_list[1])
    cfg.mbps = mbps or 10000
    M.say("pktgen %s, links up (%s Mb/s); tx ports %s, rx ports %s",
        pktgen.info and pktgen.info.Pktgen_Version or "?", tostring(mbps), cfg.tx, cfg.rx)
    pktgen.screen("off")
    return true
end

-- Warm-up (learning frames) at an absolute, low rate (PF_WARMUP_MPPS, default 0.1 Mpps in all)
-- for PF_WARMUP_S (default 2, at most 60) seconds: a percentage of a memif "100 Gb/s" link
-- would be flat out.
function M.warmup(cfg)
    if cfg.warmup_ms <= 0 or cfg.warmup_pps <= 0 then
        return
    end
    pktgen.set(cfg.tx, "rate", string.format("%.4f", M.rate_pct(cfg, cfg.warmup_pps)))
    pktgen.start(cfg.tx)
    pktgen.delay(cfg.warmup_ms)
    pktgen.stop(cfg.tx)
    pktgen.delay(cfg.settle_ms)
end

function M.finish(cfg)
    if cfg.quit then
        pktgen.quit()
    end
end

return M
