//! The Lua scripts that make lease and seat changes atomic. Each touches the
//! keys of one room only (one hash tag), so it runs on a Redis Cluster too.
//!
//! A lease is a hash `{node, epoch, players}` with a TTL. Its epoch comes
//! from the room's counter, so a lease taken after another one expired
//! always has a higher epoch: an owner that still holds an older one finds
//! out at its next refresh, and stops.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: lease, epoch, seats. ARGV: target, lease_ms, me, seat, now_ms,
/// seat_expires_ms, max_players, seats_ttl_ms.
/// The room's owner and epoch; if it had none, `target` (the node placement
/// chose) now owns it under the next epoch. When the owner is not `me`, a
/// seat is reserved in the same step if the room's published players and
/// live seats leave a place. Returns `{owner, epoch, seat}`: seat 0 none
/// needed (the owner is `me`), 1 reserved, -1 the room is full.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'node')
local epoch
if owner then
  epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch'))
else
  epoch = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], 86400000)
  owner = ARGV[1]
  redis.call('HSET', KEYS[1], 'node', owner, 'epoch', epoch, 'players', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if owner == ARGV[3] then
  return {owner, epoch, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
local players = tonumber(redis.call('HGET', KEYS[1], 'players') or '0')
if players + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then
  return {owner, epoch, -1}
end
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
return {owner, epoch, 1}
",
    )
});

/// KEYS: lease, epoch, seats. ARGV: node, epoch, lease_ms, players, now_ms,
/// seat (or empty).
/// Extends the lease if `node` holds it under `epoch`, or takes it back
/// under that epoch if it is gone and nobody took the room since (Redis
/// restarted empty, or the lease expired unused); then, with a seat, uses
/// it once. Returns `{status, seats, used}`: status 1 kept, 2 taken back,
/// 0 lost (another node has, or had, the room: nothing changed); seats:
/// the reserved seats not yet used or expired; used: 1 if the seat was
/// reserved and had not expired.
pub static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'node')
local status = 1
if owner then
  if owner ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then
    return {0, 0, 0}
  end
else
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if current > tonumber(ARGV[2]) then
    return {0, 0, 0}
  end
  redis.call('SET', KEYS[2], ARGV[2])
  status = 2
end
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'epoch', ARGV[2], 'players', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
local used = 0
if ARGV[6] ~= '' and redis.call('ZREM', KEYS[3], ARGV[6]) == 1 then
  used = 1
end
return {status, redis.call('ZCARD', KEYS[3]), used}
",
    )
});
