#!/usr/bin/env node
// Writes COUNT web-log events made by makelogs (Elastic's generator of fake
// HTTP traffic logs for Kibana; installed into node_modules/ by
// scripts/services.sh) as a `_bulk` request body for INDEX on standard
// output, each with the _id `mk-N`:
//
//   node scripts/makelogs_bulk.js 2000 weblogs > weblogs.bulk
//
// makelogs' own writer cannot fill an index of the test servers: it sends
// `_type` in every bulk action line (an Elasticsearch 8 API answers
// "Action/metadata line [1] contains an unknown parameter [_type]") and puts
// an index template whose mapping is nested under the type `_doc` (an
// OpenSearch 3 API answers "The mapping definition cannot be nested under a
// type"). So its event generator is used as it is, and the body written here
// holds the documents its writer would send, without `_type` and without the
// template (the servers map the documents dynamically).
'use strict';

const [count, index] = process.argv.slice(2);
if (!/^\d+$/.test(count || '') || !index) {
  process.stderr.write('usage: makelogs_bulk.js COUNT INDEX\n');
  process.exit(2);
}
// makelogs reads its settings from the command line when first required.
process.argv = [process.argv[0], 'makelogs', '--count', count, '--days', '3',
  '--indexInterval', 'daily'];
const randomEvent = require('makelogs/_randomEvent');

const out = [];
for (let i = 0; i < Number(count); i++) {
  out.push(JSON.stringify({ index: { _index: index, _id: `mk-${i}` } }));
  out.push(JSON.stringify(randomEvent('logstash-')));
}
process.stdout.write(out.join('\n') + '\n');
