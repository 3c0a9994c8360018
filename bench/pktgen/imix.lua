-- imix.lua: simple IMIX (7:4:1 of 64, 570 and 1518-byte frames, mean 353.83 bytes; the pattern of
-- `pollfwdctl gen-pcap --sizes imix`) through the device under test, with the frame mix on the
-- wire checked. Pktgen-DPDK 23.06.x.
--
--   pollfwdctl gen-pcap -o imix.pcap -n 1200 --sizes imix --flows 1200
--   PF_DURATION_S=30 pktgen ... -- -P -m "[1:2].0,[1:2].1" -s 0:imix.pcap -f bench/pktgen/imix.lua
--
-- PF_IMIX_MODE=pcap (default): pktgen replays the pcap it was given with `-s P:file.pcap`
--   (pktgen.pcap(ports, "on")). This is the mode that puts IMIX on the wire with pktgen 23.06.1
--   (measured: 349.8 bytes per frame without FCS = 353.8 with it).
-- PF_IMIX_MODE=seq: pktgen's sequence packets (pktgen.seqTable + pktgen.set(p, "seq_cnt", 12)).
--   pktgen 23.06.1 does not apply them from Lua (measured: every frame 64 bytes); kept for other
--   pktgen versions, and the check below refuses the figures when the mix is not on the wire.
--
-- The check: the mean frame size (incl. FCS) sent (obytes/opackets) and received
-- (ibytes/ipackets) must be within PF_IMIX_TOL (2) % of PF_IMIX_MEAN (353.83, the 7:4:1 mean;
-- set it for another pcap); otherwise no Mpps or Gb/s figure is printed or written (status
-- "refused"). Gb/s come from the measured bytes (L2: frame bytes incl. FCS; L1: + 20 bytes of
-- preamble and gap per frame).
--
-- Warm-up at PF_WARMUP_MPPS for PF_WARMUP_S, then one run of PF_DURATION_S at PF_MPPS (Mpps in
-- all; default: flat out, pktgen at 100 %) with the offered rate measured (a run short of 98 %
-- of PF_MPPS is flagged invalid). PF_SEARCH=1: the RFC 2544 search of rfc2544.lua on the IMIX
-- instead. PF_LATENCY=1: latency probes during the run (with PF_SEARCH=1: one more trial at the
-- result). Output: <PF_OUT>-imix.csv (one row: the run or the search result),
-- <PF_OUT>-imix-trials.csv (every trial), <PF_OUT>-imix.txt.

-- pflib.lua sits next to this script (or set PF_LIB to its path).
local here = debug and string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local pf = dofile(os.getenv("PF_LIB") or (here .. "pflib.lua"))

local PATTERN = { 64, 64, 570, 64, 64, 570, 64, 64, 570, 64, 570, 1518 }
local cfg = pf.config()
local mode = pf.env("PF_IMIX_MODE", "pcap")
local mpps_asked = pf.num("PF_MPPS", 0)
local duration_s = pf.num("PF_DURATION_S", 30)
local search = pf.env("PF_SEARCH", "0") ~= "0"
local tol = pf.num("PF_IMIX_TOL", 2)
if pf.env("PF_RATE", nil) ~= nil then
    error("PF_RATE is gone for imix.lua: PF_MPPS (absolute, measured; unset = flat out)")
end

local profile = 0
for _, s in ipairs(PATTERN) do
    profile = profile + s
end
profile = pf.num("PF_IMIX_MEAN", profile / #PATTERN)

pf.open_log(cfg.out .. "-imix.txt")
if not pf.prepare(cfg) then
    pf.finish(cfg)
    return
end
pf.setup_single(cfg)
cfg.frame_bytes = profile

local function port_mac(p)
    local ok, st = pcall(pktgen.pktStats, tostring(p))
    if ok and st ~= nil and st[p] ~= nil and st[p].mac_addr ~= nil then
        return st[p].mac_addr
    end
    return nil
end

if mode == "seq" then
    local dst_mac = cfg.dst_mac or "02:00:00:00:00:02"
    local src_ip = cfg.src_ip
    if not string.find(src_ip, "/") then
        src_ip = src_ip .. "/24"
    end
    local dst_ip = string.gsub(cfg.dst_ip, "/.*", "")
    for _, p in ipairs(cfg.tx_list) do
        local src_mac = pf.env("PF_SRC_MAC", nil) or port_mac(p) or "02:00:00:00:00:01"
        for i, size in ipairs(PATTERN) do
            pktgen.seqTable(i - 1, tostring(p), {
                eth_dst_addr = dst_mac,
                eth_src_addr = src_mac,
                ip_dst_addr = dst_ip,
                ip_src_addr = src_ip,
                sport = cfg.sport + i - 1,
                dport = cfg.dport,
                ethType = "ipv4",
                ipProto = "udp",
                vlanid = 1,
                pktSize = size,
                gtpu_teid = 0,
                cos = 0,
                tos = 0,
                tcp_flags = "",
                tcp_seq = 0,
                tcp_ack = 0,
            })
        end
        pktgen.set(tostring(p), "seq_cnt", #PATTERN)
    end
elseif mode == "pcap" then
    pktgen.pcap(cfg.tx, "on")
else
    error("PF_IMIX_MODE is pcap or seq")
end

-- The frame mix a trial really had: nil if it matches the profile, else the reason.
local function mix_problem(t)
    for _, side in ipairs({ { "sent", t.tx_mean }, { "received", t.rx_mean } }) do
        local name, mean = side[1], side[2]
        if mean == nil then
            return string.format("no frame %s", name)
        end
        if math.abs(mean - profile) > tol / 100 * profile then
            return string.format("mean frame %s %.1f B, the profile's is %.1f B (tolerance %g %%)",
                name, mean, profile, tol)
        end
    end
    return nil
end

pf.say("IMIX (mean %.2f bytes incl. FCS), mode %s, checked to within %g %% on the wire", profile,
    mode, tol)
pf.warmup(cfg)

local trials_csv = pf.csv(cfg.out .. "-imix-trials.csv", pf.TRIAL_COLUMNS)
local function on_trial(t)
    pf.say("  %s  mean frame sent %s B, received %s B", pf.trial_text(t),
        t.tx_mean and string.format("%.1f", t.tx_mean) or "-",
        t.rx_mean and string.format("%.1f", t.rx_mean) or "-")
    trials_csv.row(pf.trial_cells(cfg, t))
end

local csv = pf.csv(cfg.out .. "-imix.csv", { "mode", "status", "asked_mpps", "seconds",
    "frames_sent", "frames_received", "loss_pct", "loss_tol_pct", "offered_mpps",
    "forwarded_mpps", "tx_mean_bytes", "rx_mean_bytes", "profile_mean_bytes", "rx_l2_gbps",
    "rx_l1_gbps", "gen_rx_drops", table.unpack(pf.LATENCY_COLUMNS) })

local function report(t, lat, status, label)
    local problem = t and mix_problem(t)
    if t == nil then
        status = "none"
    elseif problem then
        status = "refused"
        pf.say("IMIX %s: REFUSED, no figure: %s (pktgen did not put the IMIX on the wire)", label,
            problem)
    end
    local ok = t ~= nil and problem == nil
    local secs = t and t.seconds or 0
    local l2 = ok and (t.ibytes + pf.FCS * t.received) * 8 / secs / 1e9 or nil
    local l1 = ok and l2 + t.received * 20 * 8 / secs / 1e9 or nil
    local function fig(v, fmt)
        return ok and string.format(fmt, v) or ""
    end
    local cells = { mode, status, t and t.asked_pps and string.format("%.4f", t.asked_pps / 1e6)
        or "flat-out", secs, t and t.sent or 0, t and t.received or 0,
        fig(t and t.loss_pct, "%.6f"), cfg.loss_tol, fig(t and t.tx_pps / 1e6, "%.4f"),
        fig(t and t.rx_pps / 1e6, "%.4f"),
        t and t.tx_mean and string.format("%.1f", t.tx_mean) or "",
        t and t.rx_mean and string.format("%.1f", t.rx_mean) or "", string.format("%.2f", profile),
        fig(l2, "%.3f"), fig(l1, "%.3f"), t and t.gen_rx_drops or 0 }
    for _, v in ipairs(pf.latency_cells(lat)) do
        cells[#cells + 1] = v
    end
    csv.row(cells)
    if ok then
        pf.say("IMIX %s (%s): offered %.4f Mpps, forwarded %.4f Mpps = %.3f Gb/s L2, %.3f Gb/s L1 " ..
            "(measured bytes; mean frame %.1f B sent, %.1f B received), loss %.4f %% (tolerance %g %%)",
            label, status, t.tx_pps / 1e6, t.rx_pps / 1e6, l2, l1, t.tx_mean, t.rx_mean,
            t.loss_pct, cfg.loss_tol)
        if lat ~= nil or cfg.latency then
            pf.say("IMIX %s: %s", label, pf.latency_text(lat))
        end
    elseif t == nil then
        pf.say("IMIX %s: none (no valid trial passed)", label)
    end
end

if search then
    local best, _, info = pf.search(cfg, on_trial)
    -- The flat-out trial shows whether the mix is on the wire at all.
    local problem = mix_problem(info.flat)
    local lat = nil
    if best ~= nil and problem == nil and cfg.latency then
        local c
        c, lat = pf.latency_trial(cfg, best.asked_pps and best.tx_pps or nil)
        c.kind = "latency"
        on_trial(c)
    end
    report(problem and info.flat or best, lat, problem and "refused" or info.status,
        "zero-loss throughput")
else
    local duration_ms = math.floor(duration_s * 1000)
    local ask = mpps_asked > 0 and mpps_asked * 1e6 or nil
    local t, lat
    if cfg.latency then
        t, lat = pf.latency_trial(cfg, ask, duration_ms)
    else
        local keep = cfg.trial_ms
        cfg.trial_ms = duration_ms
        t = pf.trial(cfg, ask)
        cfg.trial_ms = keep
    end
    t.kind = "run"
    t.iter = 1
    on_trial(t)
    report(t, lat, t.valid and "ok" or "invalid", string.format("run of %g s", duration_s))
end
csv.close()
trials_csv.close()
pf.finish(cfg)
