-- imix.lua: simple IMIX (7:4:1 of 64, 570 and 1518-byte frames, average 353.8 bytes; the same
-- pattern as `pollfwdctl gen-pcap --sizes imix`) through the device under test.
-- Pktgen-DPDK 23.06.x.
--
--   PF_RATE=100 PF_DURATION_S=30 pktgen ... -- -P -m "[1:2].0,[1:2].1" -f bench/pktgen/imix.lua
--
-- PF_IMIX_MODE=seq (default): pktgen's sequence mode, 12 sequence packets in the order
--   64 64 570 64 64 570 64 64 570 64 570 1518 (pktgen.seqTable + pktgen.set(port, "seq_cnt",
--   12)), each with its own source port so the DUT sees 12 flows per source address.
-- PF_IMIX_MODE=pcap: replays a pcap given to pktgen with `-s 0:lab/imix.pcap` (make one with
--   `pollfwdctl gen-pcap -o lab/imix.pcap -n 1200 --sizes imix --flows 1200`) via pktgen.pcap.
-- Sequence frames need both MACs: PF_SRC_MAC (default: the tx port's MAC as pktgen reports it)
-- and PF_DST_MAC (default 02:00:00:00:00:02; pollfwd's ports are promiscuous by default).
--
-- Runs PF_WARMUP_S at PF_WARMUP_RATE %, then PF_DURATION_S at PF_RATE %: prints and writes
-- (<PF_OUT>-imix.csv) frames sent and received, loss, Mpps and Gb/s. PF_SEARCH=1 runs the
-- RFC 2544 zero-loss binary search (as rfc2544.lua) on the IMIX instead. PF_LATENCY=1: pktgen's
-- latency probes during the run (with PF_SEARCH=1: one more trial at the zero-loss rate), as
-- in rfc2544.lua; CSV columns latency_avg_us, latency_min_us, latency_max_us, latency_samples.

-- pflib.lua sits next to this script (or set PF_LIB to its path).
local here = debug and string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local pf = dofile(os.getenv("PF_LIB") or (here .. "pflib.lua"))

local PATTERN = { 64, 64, 570, 64, 64, 570, 64, 64, 570, 64, 570, 1518 }
local cfg = pf.config()
local mode = pf.env("PF_IMIX_MODE", "seq")
local rate = pf.num("PF_RATE", 100)
local duration_s = pf.num("PF_DURATION_S", 30)
local search = pf.env("PF_SEARCH", "0") ~= "0"

local avg = 0
for _, s in ipairs(PATTERN) do
    avg = avg + s
end
avg = avg / #PATTERN

pf.open_log(cfg.out .. "-imix.txt")
if not pf.prepare(cfg) then
    pf.finish(cfg)
    return
end
pf.setup_single(cfg)

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
    error("PF_IMIX_MODE is seq or pcap")
end

pf.say("IMIX 7:4:1 (64/570/1518, average %.1f bytes), mode %s", avg, mode)
pf.warmup(cfg)

if search then
    local best = pf.search(cfg, function(t)
        pf.say("  rate %7.3f %%  sent %12d  received %12d  loss %8.4f %%  %s", t.rate, t.sent,
            t.received, t.loss_pct, t.pass and "pass" or "FAIL")
    end)
    if best then
        pf.say("IMIX zero-loss throughput: %.3f %% = %.4f Mpps = %.3f Gb/s (L2)", best.rate,
            best.rx_pps / 1e6, best.rx_pps * avg * 8 / 1e9)
        if cfg.latency then
            local _, lat = pf.latency_trial(cfg, best.rate)
            pf.say("IMIX at %.3f %%: %s", best.rate, pf.latency_text(lat))
        end
    else
        pf.say("IMIX zero-loss throughput: none (every trial lost frames)")
    end
    pf.finish(cfg)
    return
end

local duration_ms = math.floor(duration_s * 1000)
local t, lat
if cfg.latency then
    t, lat = pf.latency_trial(cfg, rate, duration_ms)
else
    local keep = cfg.trial_ms
    cfg.trial_ms = duration_ms
    t = pf.trial(cfg, rate)
    cfg.trial_ms = keep
end
local csv = pf.csv(cfg.out .. "-imix.csv", { "rate_pct", "seconds", "frames_sent",
    "frames_received", "loss_pct", "tx_mpps", "rx_mpps", "rx_l2_gbps", "gen_rx_drops",
    table.unpack(pf.LATENCY_COLUMNS) })
local cells = { string.format("%.3f", rate), duration_s, t.sent, t.received,
    string.format("%.6f", t.loss_pct), string.format("%.4f", t.tx_pps / 1e6),
    string.format("%.4f", t.rx_pps / 1e6), string.format("%.3f", t.rx_pps * avg * 8 / 1e9),
    t.gen_rx_drops }
for _, v in ipairs(pf.latency_cells(lat)) do
    cells[#cells + 1] = v
end
csv.row(cells)
csv.close()
pf.say("IMIX at %g %% for %g s: sent %d (%.4f Mpps), received %d (%.4f Mpps, %.3f Gb/s L2), lost %d (%.4f %%)",
    rate, duration_s, t.sent, t.tx_pps / 1e6, t.received, t.rx_pps / 1e6,
    t.rx_pps * avg * 8 / 1e9, t.lost, t.loss_pct)
if cfg.latency then
    pf.say("IMIX at %g %%: %s", rate, pf.latency_text(lat))
end
pf.finish(cfg)
