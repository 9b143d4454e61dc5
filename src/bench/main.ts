import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { rebalanceBench } from './rebalance.js';
import { simulatorScale } from './simulator-scale.js';

const program = new Command('ampyard-bench')
  .description('Ampyard benchmarks; each scenario runs the CSMS as its own process on 127.0.0.1 and stops by itself')
  .option('--scenario <name>', 'simulator-scale | rebalance', 'simulator-scale')
  .option('--iterations <n>', 'rebalance rounds to time', (v) => Number.parseInt(v, 10), 2000)
  .option('--stations <n>', 'stations', (v) => Number.parseInt(v, 10), 5000)
  .option('--duration <s>', 'measured seconds', (v) => Number.parseInt(v, 10), 60)
  .option('--interval <s>', 'meter value sample interval (simulator-scale)', (v) => Number.parseInt(v, 10), 10)
  .option('--json <file>', 'also write the result as JSON');

program.parse();
const o = program.opts();
let result: object;
switch (o.scenario) {
  case 'simulator-scale':
    result = await simulatorScale({ stations: o.stations, durationS: o.duration, sampleIntervalS: o.interval });
    break;
  case 'rebalance':
    result = await rebalanceBench({ connectors: o.stations === 5000 ? 1000 : o.stations, iterations: o.iterations });
    break;
  default:
    console.error(`unknown scenario ${o.scenario}`);
    process.exit(2);
}
console.log(JSON.stringify(result, null, 2));
if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2));
process.exit(0);
