"""
The Lua side of the receipts and MO shared through Redis
(:mod:`smsc_sim.cluster.redis.deliveries`): one script applies a reactor
turn's operations, one reads the streams, one refreshes the lease and takes
over a dead process's owed receipts.  Each keeps its decision atomic.
"""

from __future__ import annotations

from smsc_sim.smpp.constants import FINAL_STATES

__all__ = ["ALIVE", "APPLY", "FIELD_END", "FINAL_NAMES", "GROUP", "OP_END", "READ"]

#: the consumer group of every delivery stream
GROUP = "smsc-sim"
#: the final message states, by name: a claimed receipt is not sent when its message ended in another
FINAL_NAMES = ",".join(sorted(state.name for state in FINAL_STATES))
#: after each field of an operation sent to Redis (group separator), and after each operation (record separator)
FIELD_END = "\x1d"
OP_END = "\x1e"

# ARGV: prefix, group, maxlen, owner, final state names (comma separated), the operations in
# one string, and how long an inbox lives after its last push (ms).  The operations: each ends with RS (0x1E) and has five fields, each ending with GS (0x1D): code,
# account, message id, data, extra.  (One string, not five arguments per operation: the client
# spends microseconds on each argument, on every message.)
#   O  record an owed receipt (data: the delivery, extra: due in ms)
#   S  forget an owed receipt (answered here)
#   A  acknowledge a stream entry (extra: its id)
#   P  add a delivery to the account's stream; forget its owed receipt (message id, when given)
#      and acknowledge the entry it was read from (extra, when given), in the same call
#   C  as P for a receipt taken from a dead process, unless its message ended in another final
#      state (extra: the receipt's state)
#   R  push outcomes onto the inbox of a process (message id: the process; data: the element), if alive
# Returns {added to streams, operations refused}: one refused operation does not stop the others.
APPLY = """
local p, group, maxlen, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local finals = {}
for name in string.gmatch(ARGV[5], '[^,]+') do finals[name] = true end
local oz, oh = p .. 'owed:' .. owner, p .. 'owedpdu:' .. owner
local added, refused = 0, 0
local function apply(op, account, mid, data, extra)
    local stream = p .. 'deliveries:' .. account
    if op == 'O' then
        redis.call('HSET', oh, mid, data)
        redis.call('ZADD', oz, extra, mid)
    elseif op == 'S' then
        redis.call('ZREM', oz, mid)
        redis.call('HDEL', oh, mid)
    elseif op == 'A' then
        redis.call('XACK', stream, group, extra)
        redis.call('XDEL', stream, extra)
    elseif op == 'R' then
        if redis.call('EXISTS', p .. 'alive:' .. mid) == 1 then
            local inbox = p .. 'owner:' .. mid .. ':ops'
            redis.call('RPUSH', inbox, data)
            redis.call('PEXPIRE', inbox, ARGV[7])
        end
    else
        local send = true
        if op == 'C' then
            local ok, record = pcall(redis.call, 'GET', p .. 'msg:' .. mid)
            local state = ok and record and string.match(record, '^%["(%u+)"')
            if state and finals[state] and state ~= extra then send = false end
        end
        if send then
            redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'd', data)
            added = added + 1
        end
        if mid ~= '' then
            redis.call('ZREM', oz, mid)
            redis.call('HDEL', oh, mid)
        end
        if op == 'P' and extra ~= '' then
            redis.call('XACK', stream, group, extra)
            redis.call('XDEL', stream, extra)
        end
    end
end
local function one(ops, from, to)
    local f, at = {}, from
    for k = 1, 5 do
        local stop = string.find(ops, '\\29', at, true)
        if stop == nil or stop > to then error('malformed operation') end
        f[k] = string.sub(ops, at, stop - 1)
        at = stop + 1
    end
    apply(f[1], f[2], f[3], f[4], f[5])
end
local ops, at = ARGV[6], 1
while at <= #ops do
    local stop = string.find(ops, '\\30', at, true) or (#ops + 1)
    -- one operation Redis refuses (a key of another type) must not stop the others
    if not pcall(one, ops, at, stop - 1) then
        refused = refused + 1
    end
    at = stop + 1
end
return {added, refused}
"""

# ARGV: prefix, group, owner, count, min idle in ms (0: take nothing over), then the accounts with
# a session here.  Per account: make the group if needed, take over entries idle for a lease (their
# reader died; the pending list is walked from its start, a bounded number of steps), then read new
# ones.  Returns account, id, data, ... (entries deleted meanwhile are skipped).
READ = """
local p, group, owner, count, idle = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local out = {}
for i = 6, #ARGV do
    local stream = p .. 'deliveries:' .. ARGV[i]
    pcall(redis.call, 'XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    local taken = 0
    if idle ~= '0' then
        local cursor, steps = '0-0', 0
        repeat
            local claimed = redis.call('XAUTOCLAIM', stream, group, owner, idle, cursor, 'COUNT', count)
            cursor, steps = claimed[1], steps + 1
            for _, entry in ipairs(claimed[2]) do
                if entry[2] then
                    table.insert(out, ARGV[i]); table.insert(out, entry[1]); table.insert(out, entry[2][2])
                    taken = taken + 1
                end
            end
        until cursor == '0-0' or steps >= 20 or taken >= count
    end
    if taken < count then
        local read = redis.call('XREADGROUP', 'GROUP', group, owner, 'COUNT', count - taken, 'STREAMS', stream, '>')
        if read then
            for _, entry in ipairs(read[1][2]) do
                table.insert(out, ARGV[i]); table.insert(out, entry[1]); table.insert(out, entry[2][2])
            end
        end
    end
end
return out
"""

# ARGV: prefix, owner, lease in ms, claim (1: take dead owners' receipts), most receipts to take.
# Returns message id, due in ms, data, ... of the receipts taken (now recorded as this owner's).
ALIVE = """
local p, owner, lease, claim, most = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local was_alive = redis.call('EXISTS', p .. 'alive:' .. owner)
redis.call('SET', p .. 'alive:' .. owner, '1', 'PX', lease)
redis.call('SADD', p .. 'owners', owner)
local out = {}
-- a process whose own lease ran out was away as long as the others may have been: it takes nothing
-- over until they had a lease to come back (a call sent before it knew it was cut off, run late)
if claim ~= '1' or was_alive == 0 then return out end
local mz, mh = p .. 'owed:' .. owner, p .. 'owedpdu:' .. owner
for _, dead in ipairs(redis.call('SMEMBERS', p .. 'owners')) do
    if #out >= most * 3 then break end
    if dead ~= owner and redis.call('EXISTS', p .. 'alive:' .. dead) == 0 then
        local z, h = p .. 'owed:' .. dead, p .. 'owedpdu:' .. dead
        local due = redis.call('ZRANGE', z, 0, most - #out / 3 - 1, 'WITHSCORES')
        for j = 1, #due, 2 do
            local mid = due[j]
            local data = redis.call('HGET', h, mid)
            if data then
                redis.call('HSET', mh, mid, data)
                redis.call('ZADD', mz, due[j + 1], mid)
                table.insert(out, mid); table.insert(out, due[j + 1]); table.insert(out, data)
            end
            redis.call('ZREM', z, mid)
            redis.call('HDEL', h, mid)
        end
        if redis.call('ZCARD', z) == 0 then
            redis.call('DEL', h)
            redis.call('SREM', p .. 'owners', dead)
        end
    end
end
return out
"""
