#!/usr/bin/env node
// Validates FHIR R4 JSON resources with FHIR.js (npm "fhir", pinned in package.json), an
// implementation independent of the Go code that builds them.
//
// Input (stdin): one resource, or a JSON array of resources.
// Output (stdout): a JSON array with one {index, resourceType, valid, messages} per resource.
// Exit status: 0 when every resource is valid, 1 when any is invalid, 2 on unusable input.
//
// errorOnUnexpected turns unknown properties into errors: a misspelt element name would
// otherwise pass as a warning and be dropped or rejected by a real FHIR server.
'use strict';

const fs = require('fs');
const { Fhir } = require('fhir');

function readResources() {
  const text = fs.readFileSync(0, 'utf8');
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`stdin is not JSON: ${err.message}`);
  }
  const resources = Array.isArray(parsed) ? parsed : [parsed];
  // An empty batch would pass vacuously and hide a test that forgot to send anything.
  if (resources.length === 0) {
    throw new Error('no resources on stdin');
  }
  return resources;
}

function main() {
  let resources;
  try {
    resources = readResources();
  } catch (err) {
    process.stderr.write(`fhir-validator: ${err.message}\n`);
    return 2;
  }
  // No constructor argument: it is a parser, and the default one loads FHIR R4.
  const fhir = new Fhir();
  const results = resources.map((resource, index) => {
    const { valid, messages } = fhir.validate(resource, { errorOnUnexpected: true });
    const resourceType = resource && typeof resource === 'object' ? resource.resourceType : undefined;
    return { index, resourceType, valid, messages };
  });
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return results.every((r) => r.valid) ? 0 : 1;
}

process.exitCode = main();
