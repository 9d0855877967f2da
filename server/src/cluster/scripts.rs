//! The Lua scripts that make lease and seat changes atomic. Each touches the
//! keys of one room only (one hash tag), so it runs on a Redis Cluster too.
//!
//! A lease is a hash `{node, epoch, players}` with a TTL. Its epoch comes
//! from the room's counter, so a lease taken after another one expired
//! always has a higher epoch: an owner that still holds an older one finds
//! out at its next refresh, and stops.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: lease, epoch. ARGV: node, lease_ms.
/// The room's owner and epoch; if it had none, `node` now owns it under the
/// next epoch.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'node')
if owner then
  return {owner, tonumber(redis.call('HGET', KEYS[1], 'epoch'))}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', epoch, 'players', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {ARGV[1], epoch}
",
    )
});

/// KEYS: lease, epoch, seats. ARGV: node, epoch, lease_ms, players, now_ms.
/// Extends the lease if `node` holds it under `epoch`, or takes it back
/// under that epoch if it is gone and nobody took the room since (Redis
/// restarted empty, or the lease expired unused). Returns `{status,
/// seats}`: status 1 kept, 2 taken back, 0 lost (another node has, or had,
/// the room); seats: the reserved seats not yet used or expired.
pub static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'node')
local status = 1
if owner then
  if owner ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then
    return {0, 0}
  end
else
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
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
return {status, redis.call('ZCARD', KEYS[3])}
",
    )
});

/// KEYS: lease, seats. ARGV: epoch, seat, now_ms, expires_ms, max_players,
/// seats_ttl_ms. Reserves `seat` in the room if its lease still has `epoch`
/// and the room's players and live seats leave a place. Returns 1 reserved,
/// 0 the lease changed, -1 the room is full.
pub static RESERVE_SEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local players = tonumber(redis.call('HGET', KEYS[1], 'players') or '0')
if players + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return -1
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
",
    )
});

/// KEYS: seats. ARGV: seat, now_ms. Uses the seat once: 1 if it was
/// reserved and has not expired, 0 otherwise.
pub static USE_SEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(expires) < tonumber(ARGV[2]) then
  return 0
end
return 1
",
    )
});
