//! The Lua scripts that make lease and seat changes atomic. Each touches the
//! keys of one room only (one hash tag), so it runs on a Redis Cluster too.
//!
//! A lease is a hash `{node, epoch, players}` with a TTL. Its epoch comes
//! from the room's counter, so a lease taken after another one expired
//! always has a higher epoch: an owner that still holds an older one finds
//! out at its next refresh, and stops.

use std::sync::LazyLock;

use redis::Script;

// Times inside the scripts are Redis's own clock (`TIME`), never a node's:
// seat expiries written by one node and pruned by another must agree.
const NOW_MS: &str =
    "local t = redis.call('TIME')\nlocal now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

fn with_clock(body: &str) -> Script {
    Script::new(&format!("{NOW_MS}{body}"))
}

/// KEYS: lease, epoch, seats. ARGV: target, lease_ms, me, seat, seat_ms,
/// max_players.
/// The room's owner and epoch; if it had none, `target` (the node placement
/// chose) now owns it under the next epoch. When the owner is `me`, its
/// lease is extended (so that `me` may trust it for a whole lease from
/// now). Otherwise a seat is reserved in the same step if the room's
/// published players and live seats leave a place; the seat's member is
/// `epoch "." seat`, so a seat names the epoch it was reserved under.
/// Returns `{owner, epoch, seat}`: seat 0 none needed (the owner is `me`),
/// 1 reserved, -1 the room is full.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r"
local owner = redis.call('HGET', KEYS[1], 'node')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch'))
if not owner or not epoch then
  epoch = redis.call('INCR', KEYS[2])
  -- The counter outlives its leases by a day, so that a room's epochs
  -- keep rising across quiet spells; it is refreshed with each lease.
  redis.call('PEXPIRE', KEYS[2], 86400000)
  owner = ARGV[1]
  redis.call('HSET', KEYS[1], 'node', owner, 'epoch', epoch, 'players', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if owner == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {owner, epoch, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local players = tonumber(redis.call('HGET', KEYS[1], 'players') or '0')
if players + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  return {owner, epoch, -1}
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), epoch .. '.' .. ARGV[4])
redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[5]))
return {owner, epoch, 1}
",
    )
});

/// KEYS: lease, epoch, seats. ARGV: node, epoch, lease_ms, players, seat
/// (`epoch.id`, or empty), take_back (`1` or `0`).
/// With a seat, first checks it is reserved and not expired, and changes
/// nothing if not. Then extends the lease if `node` holds it under
/// `epoch`; or, if `take_back` and the lease is gone and nobody took the
/// room since (Redis restarted empty, or the lease expired unused), takes
/// it back under that epoch. Then uses the seat. Returns `{status, seats}`:
/// status 1 kept, 2 taken back, 0 lost (another node has, or had, the
/// room, or the lease is gone and may not be taken back), 3 the seat is
/// unknown, used or expired; seats: the reserved seats not yet used or
/// expired; and how many expired unused since the last refresh.
/// (A refusal returns two elements only.)
pub static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    with_clock(
        r"
if ARGV[5] ~= '' then
  local expires = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if not expires or tonumber(expires) < now then
    return {3, 0}
  end
end
local owner = redis.call('HGET', KEYS[1], 'node')
local status = 1
if owner then
  if owner ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then
    return {0, 0}
  end
else
  if ARGV[6] ~= '1' then
    return {0, 0}
  end
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if current > tonumber(ARGV[2]) then
    return {0, 0}
  end
  redis.call('SET', KEYS[2], ARGV[2])
  status = 2
end
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', ARGV[2], 'players', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[5])
end
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
return {status, redis.call('ZCARD', KEYS[3]), expired}
",
    )
});

/// KEYS: lease. ARGV: node, epoch. Deletes the lease if `node` still holds
/// it under `epoch` (a node that stops lets its rooms move at once).
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] and redis.call('HGET', KEYS[1], 'epoch') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});
