-- A stand-in for Pktgen-DPDK's `pktgen` Lua library, to run the lab scripts without pktgen
-- (which is not packaged for Debian): bench/lib/test_bench.py runs
--
--   lua5.3 bench/pktgen/test/mock_pktgen.lua bench/pktgen/rfc2544.lua
--
-- with PF_* variables, and checks the files the script wrote.
--
-- Only functions that Pktgen-DPDK 23.06's app/lpktgenlib.c registers exist here, each with the
-- argument count that lpktgenlib.c checks, so a script calling anything else fails.
-- The model: two ports of MOCK_LINK_MBPS (default 10000; memif reports 100000), a device under
-- test forwarding everything sent on port 0 to port 1 up to MOCK_DUT_PPS frames per second
-- (default 5 Mpps) and dropping the excess. What the real pktgen 23.06.1 did in the one-box
-- memif lab (bench/pktgen/README.md), modelled:
-- * the generator has a ceiling, MOCK_GEN_PPS (default: none): asked for more (a rate percent
--   above it), it sends flat out at that ceiling, whatever the percentage said;
-- * pktgen's pacing is off by a factor, MOCK_RATE_GAIN (default 1; 1.10 measured at 64 B on
--   memif): it sends gain x the asked rate;
-- * while the generator runs flat out, its receive side lags and the DUT loses bursts of frames
--   (tx_full on memif): up to MOCK_FLATOUT_LOSS frames per second, random (MOCK_SEED), so
--   flat-out trials pass or fail by chance;
-- * sequence packets (seqTable + set seq_cnt) are NOT applied: frames stay at the single
--   packet's size (measured on 23.06.1), unless MOCK_SEQ_APPLIED=1;
-- * pcap replay (pktgen.pcap(p, "on")) sends the IMIX only if pktgen was given a pcap with
--   -s P:file (MOCK_PCAP=imix); without one the frames stay at the single packet's size;
-- * obytes/ibytes count frames without their 4-byte FCS (60 per 64-byte frame).
-- Time is virtual (pktgen.delay advances it). Facts of the real pktgen that the model keeps,
-- so that a script relying on the opposite fails here too:
-- * the port counters that portStats returns are refreshed only once per (virtual) second;
-- * the links come up MOCK_LINK_UP_MS (default 1500) ms after start, and the link state that
--   linkState returns is refreshed only while the screen is on (it starts on): a script that
--   turns the screen off before the links are up sees them down for ever;
-- * pktgen.delay takes an integer (luaL_checkinteger: 1.5 fails, 2.0 and "2" pass), and so do
--   the values of pktgen.set other than "rate";
-- * latency (pktgen.latency(ports, "enable")) is per port and checked on both sides: a port
--   with it on sends a probe every 10 ms (23.06's default latency rate) while it transmits;
--   the receiving port measures the probes only if latency is on there too, and keeps the
--   statistics (pktStats(p).latency: num_pkts, avg_us, min_us, max_us). Probe latency is
--   MOCK_LATENCY_US (default 8) + 0..4 us; pktgen.clr() zeroes counters and latency.

local LINK_MBPS = tonumber(os.getenv("MOCK_LINK_MBPS") or "10000")
local dut_pps = tonumber(os.getenv("MOCK_DUT_PPS") or "5000000")
local gen_pps = tonumber(os.getenv("MOCK_GEN_PPS") or "1e15")
local rate_gain = tonumber(os.getenv("MOCK_RATE_GAIN") or "1")
local flatout_loss = tonumber(os.getenv("MOCK_FLATOUT_LOSS") or "0")
local seq_applied = os.getenv("MOCK_SEQ_APPLIED") == "1"
local pcap_file = os.getenv("MOCK_PCAP") == "imix"
local seed = tonumber(os.getenv("MOCK_SEED") or "1")
local function random(n) -- deterministic 0..n-1 (an LCG: the same run gives the same figures)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
end
local link_up_ms = tonumber(os.getenv("MOCK_LINK_UP_MS") or "1500")
local lat_base_us = tonumber(os.getenv("MOCK_LATENCY_US") or "8")
local PROBE_MS = 10
local screen_on = true
local link_shown = false
local lat_on = { [0] = false, [1] = false }
local lat = {}
local function lat_clear(p)
    lat[p] = { n = 0, sum = 0.0, min = 0.0, max = 0.0 }
end
lat_clear(0)
lat_clear(1)
local probes_sent = 0

local now_ms = 0
local real = { [0] = {}, [1] = {} }
local shown = { [0] = {}, [1] = {} }
local FIELDS = { "ipackets", "opackets", "ibytes", "obytes", "ierrors", "oerrors", "rx_nombuf", "imissed" }
for p = 0, 1 do
    for _, f in ipairs(FIELDS) do
        real[p][f] = 0
        shown[p][f] = 0
    end
end
local port = {
    [0] = { rate = 100, size = 64, sending = false, seq_cnt = 0, range = false, pcap = false },
    [1] = { rate = 100, size = 64, sending = false, seq_cnt = 0, range = false, pcap = false },
}
local IMIX_AVG = (7 * 64 + 4 * 570 + 1518) / 12
local quit_called = false
local carry = 0.0

local function check(name, want, ...)
    local got = select("#", ...)
    if got ~= want then
        error(string.format("pktgen.%s: %d argument(s), lpktgenlib.c wants %d", name, got, want), 3)
    end
end

local function portlist(s)
    assert(type(s) == "string", "portlist must be a string")
    if s == "all" then
        return { 0, 1 }
    end
    local out = {}
    for item in string.gmatch(s, "[^,]+") do
        local a, b = string.match(item, "^(%d+)%-(%d+)$")
        if a then
            for p = tonumber(a), tonumber(b) do
                out[#out + 1] = p
            end
        else
            local p = tonumber(item)
            assert(p and port[p], "no port " .. item)
            out[#out + 1] = p
        end
    end
    return out
end

local function frame_size(p)
    if port[p].pcap and pcap_file then
        return IMIX_AVG
    end
    if port[p].seq_cnt == 12 and seq_applied then
        return IMIX_AVG
    end
    return port[p].size
end
local bytes_carry = { [0] = 0.0, [1] = 0.0 }
local function bytes(q, n)
    local b = n * (frame_size(0) - 4) + bytes_carry[q]
    local whole = math.floor(b)
    bytes_carry[q] = b - whole
    return whole
end
local saturated_ms = 0

-- One millisecond of traffic.
local function tick()
    local offered = 0.0
    local p = port[0]
    local saturated = false
    if p.sending then
        local line = LINK_MBPS * 1e6 / ((frame_size(0) + 20) * 8)
        local want = line * p.rate / 100 * rate_gain
        saturated = want > gen_pps
        offered = math.min(want, gen_pps) / 1000
    end
    carry = carry + offered
    local n = math.floor(carry)
    carry = carry - n
    if n > 0 then
        local cap = dut_pps / 1000
        local fwd = math.min(n, math.floor(cap))
        if saturated and flatout_loss > 0 then
            saturated_ms = saturated_ms + 1
            if saturated_ms % 1000 == 0 then -- a burst per second of flat-out sending
                fwd = math.max(0, fwd - random(flatout_loss + 1))
            end
        end
        real[0].opackets = real[0].opackets + n
        real[0].obytes = real[0].obytes + bytes(0, n)
        real[1].ipackets = real[1].ipackets + fwd
        real[1].ibytes = real[1].ibytes + bytes(1, fwd)
    end
    -- Latency probes of port 0, forwarded by the DUT to port 1 (not overloaded: a probe is one
    -- frame among many, the model lets every probe through).
    if p.sending and lat_on[0] and now_ms % PROBE_MS == 0 then
        probes_sent = probes_sent + 1
        if lat_on[1] then
            local l, us = lat[1], lat_base_us + probes_sent % 5
            l.min = (l.n == 0 or us < l.min) and us or l.min
            l.max = math.max(l.max, us)
            l.n = l.n + 1
            l.sum = l.sum + us
        end
    end
    now_ms = now_ms + 1
    if screen_on then
        link_shown = now_ms >= link_up_ms
    end
    if now_ms % 1000 == 0 then
        for q = 0, 1 do
            for _, f in ipairs(FIELDS) do
                shown[q][f] = real[q][f]
            end
        end
    end
end

local range = {}
for _, name in ipairs({ "dst_mac", "src_mac", "src_ip", "dst_ip", "src_port", "dst_port", "ttl",
    "vlan_id", "pkt_size", "cos", "tos" }) do
    range[name] = function(...)
        check("range." .. name, 3, ...)
        local ports, what = ...
        portlist(ports)
        assert(({ start = 1, min = 1, max = 1, inc = 1 })[what], "range." .. name .. ": " .. tostring(what))
    end
end
range.ip_proto = function(...)
    check("range.ip_proto", 2, ...)
end

pktgen = {
    info = { Pktgen_Version = "23.06.1 (mock)", DPDK_Version = "DPDK 22.11 (mock)" },
    range = range,
}

-- luaL_checkinteger: an integer, a float with an exact integer value, or a string of one.
local function checkinteger(fname, v)
    local n = math.tointeger(type(v) == "string" and tonumber(v) or v)
    if n == nil then
        error(string.format("bad argument to '%s' (number has no integer representation: %s)",
            fname, tostring(v)), 3)
    end
    return n
end

function pktgen.set(...)
    check("set", 3, ...)
    local ports, what, v = ...
    if what ~= "rate" then
        checkinteger("set", v)
    end
    for _, p in ipairs(portlist(ports)) do
        if what == "rate" then
            port[p].rate = assert(tonumber(v), "rate")
        elseif what == "size" then
            port[p].size = assert(tonumber(v))
        elseif what == "seq_cnt" or what == "seqCnt" then
            port[p].seq_cnt = tonumber(v)
        elseif not ({ count = 1, burst = 1, sport = 1, dport = 1, ttl = 1, prime = 1 })[what] then
            error("set does not support " .. tostring(what))
        end
    end
end

function pktgen.start(...)
    check("start", 1, ...)
    for _, p in ipairs(portlist(...)) do
        port[p].sending = true
    end
end

function pktgen.stop(...)
    check("stop", 1, ...)
    for _, p in ipairs(portlist(...)) do
        port[p].sending = false
    end
end

function pktgen.delay(...)
    check("delay", 1, ...)
    local ms = checkinteger("delay", ...)
    for _ = 1, ms do
        tick()
    end
end

function pktgen.clr(...)
    check("clr", 0, ...)
    for p = 0, 1 do
        for _, f in ipairs(FIELDS) do
            real[p][f] = 0
        end
        lat_clear(p)
    end
end

function pktgen.portStats(...)
    check("portStats", 2, ...)
    local ports, kind = ...
    assert(kind == "port" or kind == "rate", "portStats kind " .. tostring(kind))
    local out = { n = 0 }
    for _, p in ipairs(portlist(ports)) do
        local t = {}
        for _, f in ipairs(FIELDS) do
            t[f] = shown[p][f]
        end
        out[p] = t
        out.n = out.n + 1
    end
    return out
end

function pktgen.linkState(...)
    check("linkState", 1, ...)
    local out = { n = 0 }
    for _, p in ipairs(portlist(...)) do
        out[p] = link_shown and ("<UP-" .. LINK_MBPS .. "-FD>") or "<--Down-->"
        out.n = out.n + 1
    end
    return out
end

function pktgen.pktStats(...)
    check("pktStats", 1, ...)
    local out = { n = 0 }
    for _, p in ipairs(portlist(...)) do
        local l = lat[p]
        out[p] = { mac_addr = string.format("02:00:00:00:00:%02x", p + 1),
            latency = { num_pkts = l.n, avg_us = l.n > 0 and l.sum / l.n or 0.0,
                min_us = l.min, max_us = l.max } }
        out.n = out.n + 1
    end
    return out
end

local function noop(name, n)
    return function(...)
        check(name, n, ...)
    end
end

function pktgen.screen(...)
    check("screen", 1, ...)
    local state = ...
    assert(state == "on" or state == "off", "screen: on or off")
    screen_on = state == "on"
end

function pktgen.latency(...)
    check("latency", 2, ...)
    local ports, state = ...
    assert(state == "enable" or state == "disable", "latency: enable or disable")
    for _, p in ipairs(portlist(ports)) do
        lat_on[p] = state == "enable"
    end
end

pktgen.set_ipaddr = noop("set_ipaddr", 3)
pktgen.set_mac = noop("set_mac", 3)
pktgen.set_proto = noop("set_proto", 2)
pktgen.set_type = noop("set_type", 2)
pktgen.set_range = noop("set_range", 2)
function pktgen.pcap(...)
    check("pcap", 2, ...)
    local ports, state = ...
    for _, p in ipairs(portlist(ports)) do
        port[p].pcap = state == "on" or state == "enable"
    end
end
pktgen.page = noop("page", 1)

function pktgen.seqTable(...)
    check("seqTable", 3, ...)
    local idx, ports, t = ...
    assert(idx >= 0 and idx < 16, "seqTable index")
    portlist(ports)
    for _, k in ipairs({ "eth_dst_addr", "eth_src_addr", "ip_dst_addr", "ip_src_addr", "ethType", "ipProto" }) do
        assert(type(t[k]) == "string", "seqTable: " .. k .. " must be a string")
    end
    assert(string.find(t.ip_src_addr, "/"), "seqTable: ip_src_addr needs a /mask")
    assert(t.pktSize >= 64 and t.pktSize <= 1518, "seqTable: pktSize")
end

function pktgen.quit(...)
    check("quit", 0, ...)
    quit_called = true
end

local script = assert(arg[1], "usage: lua5.3 mock_pktgen.lua SCRIPT.lua")
dofile(script)
print(string.format("mock: virtual time %.1f s, quit %s", now_ms / 1000, tostring(quit_called)))
if not quit_called then
    os.exit(3)
end
