// Drives KafkaJS's admin client against a broker, for Skiff's integration
// tests (integration/admin_test.go runs it).
//
// usage: node admin.js BOOTSTRAP TOPIC GROUP
//
// Creates TOPIC (3 partitions, retention.ms=3600000), lists topics,
// describes its configs, lists and describes groups, fetches GROUP's
// committed offsets (the test commits them first), deletes TOPIC, and
// prints one JSON object with what it saw. Any error exits non-zero.
'use strict'

const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')

async function main () {
  const [bootstrap, topic, group] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'skiff-kafkajs', brokers: [bootstrap], logLevel: logLevel.ERROR })
  const admin = kafka.admin()
  await admin.connect()
  const out = {}

  out.created = await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }]
  })
  out.topics = (await admin.listTopics()).sort()

  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  out.partitions = meta.topics[0].partitions.length

  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }]
  })
  out.configs = {}
  for (const entry of described.resources[0].configEntries) {
    out.configs[entry.configName] = { value: entry.configValue, isDefault: entry.isDefault, source: entry.configSource }
  }

  out.groups = (await admin.listGroups()).groups.map(g => g.groupId).sort()
  out.groupState = (await admin.describeGroups([group])).groups[0].state

  const offsets = await admin.fetchOffsets({ groupId: group })
  out.offsets = {}
  for (const t of offsets) {
    for (const p of t.partitions) {
      out.offsets[`${t.topic}/${p.partition}`] = Number(p.offset)
    }
  }

  await admin.deleteTopics({ topics: [topic] })
  out.topicsAfterDelete = (await admin.listTopics()).sort()
  await admin.disconnect()
  console.log(JSON.stringify(out))
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
