// Drives KafkaJS against a broker, for Skiff's integration tests
// (integration/ecosystem_node_test.go runs it).
//
// usage: node kafkajs_ecosystem.js BOOTSTRAP PREFIX
//
// Every check is asserted here: any mismatch exits non-zero with a message on
// stderr. On success it prints one JSON object (versions and what it did)
// that the Go test checks again against the broker. Topics and groups are
// named after PREFIX:
//
//   PREFIX-admin   created (3 partitions), listed, deleted
//   PREFIX-gzip    keyed records with headers, read back
//   PREFIX-group   read half in group PREFIX-group, commit, resume
//   PREFIX-idem    idempotent producer
//   PREFIX-txn     committed, aborted, committed transactions, each also
//                  committing offsets of group PREFIX-eos
//
// KafkaJS compresses with gzip on its own; snappy, lz4 and zstd need codec
// packages that are not installed, so only gzip is exercised.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1' // the scripts pick every partition
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')
const kafkajsVersion = require('kafkajs/package.json').version

const PARTITIONS = 3
const PER_PARTITION = 10
const TIMEOUT = 20000

class Mismatch extends Error {}

function check (cond, msg) {
  if (!cond) throw new Mismatch(msg)
}

function log (msg) {
  process.stderr.write(`kafkajs_ecosystem.js: ${msg}\n`)
}

// KafkaJS logs to stdout by default; stdout carries the JSON result.
const logCreator = () => ({ namespace, level, log: entry }) => {
  const { message, ...extra } = entry
  process.stderr.write(`kafkajs ${namespace} ${message} ${JSON.stringify(extra)}\n`)
}

function deadline (what, ms = TIMEOUT) {
  let timer
  const p = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Mismatch(`timed out after ${ms} ms: ${what()}`)), ms)
  })
  return { promise: p, cancel: () => clearTimeout(timer) }
}

// race waits for p, failing with what() if it takes longer than TIMEOUT.
async function race (p, what) {
  const d = deadline(what)
  try {
    return await Promise.race([p, d.promise])
  } finally {
    d.cancel()
  }
}

async function create (admin, topic) {
  const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] })
  check(created, `create topic ${topic}: not created`)
}

async function checkAdmin (admin, prefix) {
  const topic = `${prefix}-admin`
  await create(admin, topic)
  check((await admin.listTopics()).includes(topic), `${topic} not listed after create`)
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  check(meta.topics[0].partitions.length === PARTITIONS, `${topic} has ${meta.topics[0].partitions.length} partitions`)
  await admin.deleteTopics({ topics: [topic], timeout: TIMEOUT })
  const end = Date.now() + TIMEOUT
  while ((await admin.listTopics()).includes(topic)) {
    check(Date.now() < end, `${topic} still listed after delete`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { created: topic, deleted: true }
}

// expected is record i of partition p in the codec's topic.
function expected (codec, p, i) {
  return {
    key: `key-${p}-${i}`,
    value: `value-${codec}-${p}-${i}-` + 'x'.repeat(64 + i * 7),
    headers: [['seq', String(i)], ['codec', codec], ['empty', '']]
  }
}

function messages (codec) {
  const out = []
  for (let i = 0; i < PER_PARTITION; i++) {
    for (let p = 0; p < PARTITIONS; p++) {
      const e = expected(codec, p, i)
      out.push({ partition: p, key: e.key, value: e.value, headers: Object.fromEntries(e.headers) })
    }
  }
  return out
}

// produceAll sends every partition's records in one request and checks
// they land at offsets 0..PER_PARTITION-1.
async function produceAll (producer, topic, codec, compression) {
  const meta = await producer.send({ topic, acks: -1, compression, messages: messages(codec) })
  const bases = {}
  for (const m of meta) {
    check(m.errorCode === 0, `${topic}/${m.partition}: error ${m.errorCode}`)
    bases[m.partition] = Number(m.baseOffset)
  }
  for (let p = 0; p < PARTITIONS; p++) {
    check(bases[p] === 0, `${topic}/${p}: base offset ${bases[p]}, want 0`)
  }
}

// consume runs a consumer in group until onMessage has been given want
// messages; later ones are handed to nobody (and never committed).
async function consume (kafka, { group, topic, want, onMessage, readUncommitted = false, beforeStop }) {
  const consumer = kafka.consumer({ groupId: group, readUncommitted, maxWaitTimeInMs: 200, sessionTimeout: 6000, heartbeatInterval: 500, retry: { retries: 3 } })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let n = 0
  let done
  const finished = new Promise(resolve => { done = resolve })
  let failure = null
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (n >= want || failure) return
      try {
        onMessage(partition, message)
      } catch (err) {
        failure = err
        done()
        return
      }
      if (++n === want) done()
    }
  })
  try {
    await race(finished, () => `${topic} in group ${group}: got ${n} of ${want} records`)
    if (failure) throw failure
    if (beforeStop) await beforeStop(consumer)
  } finally {
    await consumer.disconnect()
  }
}

function sameHeaders (got, want) {
  const g = Object.entries(got || {}).map(([k, v]) => [k, v === null ? null : v.toString()])
  return JSON.stringify(g) === JSON.stringify(want)
}

async function checkCodecs (kafka, admin, prefix) {
  const out = {}
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  for (const [codec, compression] of [['gzip', CompressionTypes.GZIP]]) {
    const topic = `${prefix}-${codec}`
    await create(admin, topic)
    await produceAll(producer, topic, codec, compression)
    const per = {}
    await consume(kafka, {
      group: `${prefix}-read-${codec}`,
      topic,
      want: PARTITIONS * PER_PARTITION,
      onMessage: (p, m) => { (per[p] = per[p] || []).push(m) }
    })
    for (let p = 0; p < PARTITIONS; p++) {
      const got = per[p] || []
      check(got.length === PER_PARTITION, `${topic}/${p}: ${got.length} records, want ${PER_PARTITION}`)
      got.forEach((m, i) => {
        const e = expected(codec, p, i)
        check(Number(m.offset) === i, `${topic}/${p}: record ${i} at offset ${m.offset}`)
        check(m.key.toString() === e.key, `${topic}/${p}@${i}: key ${m.key}, want ${e.key}`)
        check(m.value.toString() === e.value, `${topic}/${p}@${i}: value ${m.value}, want ${e.value}`)
        check(sameHeaders(m.headers, e.headers), `${topic}/${p}@${i}: headers ${JSON.stringify(m.headers)}, want ${JSON.stringify(e.headers)}`)
      })
    }
    out[codec] = PARTITIONS * PER_PARTITION
  }
  await producer.disconnect()
  return out
}

async function checkGroup (kafka, admin, prefix) {
  const topic = `${prefix}-group`
  const group = `${prefix}-group`
  await create(admin, topic)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  await produceAll(producer, topic, 'group', CompressionTypes.None)
  await producer.disconnect()
  const total = PARTITIONS * PER_PARTITION
  const half = total / 2

  // The first member processes half of the records, commits exactly what
  // it processed, and leaves. Records fetched beyond that are ignored.
  const seen = {}
  const first = {}
  await consume(kafka, {
    group,
    topic,
    want: half,
    onMessage: (p, m) => { (seen[p] = seen[p] || []).push(Number(m.offset)) },
    beforeStop: async consumer => {
      for (const [p, offs] of Object.entries(seen)) first[p] = offs[offs.length - 1] + 1
      await consumer.commitOffsets(Object.entries(first).map(([p, o]) => ({ topic, partition: Number(p), offset: String(o) })))
    }
  })

  // A new member resumes right after the committed offsets: no record
  // twice, none missing.
  const resumed = {}
  await consume(kafka, {
    group,
    topic,
    want: total - half,
    onMessage: (p, m) => {
      const o = Number(m.offset)
      check(!(seen[p] || []).includes(o), `record ${topic}/${p}@${o} delivered again after resume (committed ${JSON.stringify(first)})`)
      const want = p in resumed ? resumed[p] + 1 : (first[p] || 0)
      check(o === want, `${topic}/${p}: resumed at offset ${o}, want ${want} (committed ${JSON.stringify(first)})`)
      resumed[p] = o;
      (seen[p] = seen[p] || []).push(o)
    },
    beforeStop: async consumer => {
      await consumer.commitOffsets([...Array(PARTITIONS).keys()].map(p => ({ topic, partition: p, offset: String(PER_PARTITION) })))
    }
  })
  for (let p = 0; p < PARTITIONS; p++) {
    const want = [...Array(PER_PARTITION).keys()]
    check(JSON.stringify(seen[p]) === JSON.stringify(want), `${topic}/${p}: offsets ${JSON.stringify(seen[p])}`)
  }
  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  for (const p of committed[0].partitions) {
    check(Number(p.offset) === PER_PARTITION, `committed ${topic}/${p.partition} after resume: ${p.offset}`)
  }
  return { total, first: Object.values(first).reduce((a, b) => a + b, 0), first_committed: first }
}

async function checkIdempotent (kafka, admin, prefix) {
  const topic = `${prefix}-idem`
  await create(admin, topic)
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  await produceAll(producer, topic, 'idem', CompressionTypes.None)
  await producer.disconnect()
  return { records: PARTITIONS * PER_PARTITION }
}

// waitCommitted polls until group has committed want on every partition of topic.
async function waitCommitted (admin, group, topic, want) {
  const end = Date.now() + TIMEOUT
  for (;;) {
    const got = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions
    if (got.length === PARTITIONS && got.every(p => Number(p.offset) === want)) return
    check(Date.now() < end, `group ${group}: committed ${JSON.stringify(got)}, want ${want} on every partition`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function txnValues (tag) {
  return [...Array(6).keys()].map(i => `${tag}-${i}`)
}

async function checkTransactions (kafka, admin, prefix) {
  const topic = `${prefix}-txn`
  await create(admin, topic)
  const producer = kafka.producer({ transactionalId: `${prefix}-txid`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  // Each transaction also commits offsets of PREFIX-group for group
  // PREFIX-eos (consume-transform-produce); only committed ones count.
  const eosGroup = `${prefix}-eos`
  const eosTopic = `${prefix}-group`
  for (const [tag, commit, offset] of [['committed1', true, 2], ['aborted', false, 9], ['committed2', true, 7]]) {
    const txn = await producer.transaction()
    await txn.send({ topic, messages: txnValues(tag).map((v, i) => ({ key: tag, value: v, partition: i % PARTITIONS })) })
    await txn.sendOffsets({
      consumerGroupId: eosGroup,
      topics: [{ topic: eosTopic, partitions: [...Array(PARTITIONS).keys()].map(p => ({ partition: p, offset: String(offset) })) }]
    })
    if (commit) await txn.commit()
    else await txn.abort()
    if (tag === 'aborted') await waitCommitted(admin, eosGroup, eosTopic, 2)
  }
  await producer.disconnect()
  await waitCommitted(admin, eosGroup, eosTopic, 7)

  // Every aborted record precedes the second committed transaction in its
  // partition, so reading all of the committed ones proves none was shown.
  const want = txnValues('committed1').concat(txnValues('committed2')).sort()
  const got = []
  await consume(kafka, { group: `${prefix}-read-committed`, topic, want: want.length, onMessage: (p, m) => got.push(m.value.toString()) })
  check(JSON.stringify(got.sort()) === JSON.stringify(want), `read_committed saw ${got}, want ${want}`)

  const all = want.concat(txnValues('aborted')).sort()
  const gotAll = []
  await consume(kafka, { group: `${prefix}-read-uncommitted`, topic, want: all.length, readUncommitted: true, onMessage: (p, m) => gotAll.push(m.value.toString()) })
  check(JSON.stringify(gotAll.sort()) === JSON.stringify(all), `read_uncommitted saw ${gotAll}, want ${all}`)
  return { committed: want.length, aborted: 6, eos_offsets: 7 }
}

async function main () {
  const [bootstrap, prefix] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'skiff-kafkajs-ecosystem', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })
  const admin = kafka.admin()
  await admin.connect()
  const out = { versions: { kafkajs: kafkajsVersion, node: process.versions.node } }
  const steps = [
    ['admin', () => checkAdmin(admin, prefix)],
    ['codecs', () => checkCodecs(kafka, admin, prefix)],
    ['group', () => checkGroup(kafka, admin, prefix)],
    ['idempotent', () => checkIdempotent(kafka, admin, prefix)],
    ['transactions', () => checkTransactions(kafka, admin, prefix)]
  ]
  for (const [name, step] of steps) {
    const start = Date.now()
    try {
      out[name] = await step()
    } catch (err) {
      throw new Mismatch(`${name}: ${err instanceof Mismatch ? err.message : err.stack}`)
    }
    log(`${name} ok in ${((Date.now() - start) / 1000).toFixed(2)}s`)
  }
  await admin.disconnect()
  console.log(JSON.stringify(out))
}

main().then(() => process.exit(0), err => {
  log(`FAIL: ${err.message}`)
  process.exit(1)
})
