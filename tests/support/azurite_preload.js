// Adds entities to a stopped Azurite's table database (__azurite_db_table__.json), as Azurite's own insert would
// store them: tests/support/azurite_preload.py explains why. Uses Azurite's own modules (its LokiJS, NormalizedEntity,
// time stamp and ETag helpers), so only the HTTP layer and the duplicate check's partition scan are skipped.
//
// node azurite_preload.js PROJECT_ROOT DB_FILE COLLECTION BODIES_JSONL [CHECK_JSONL]
//   BODIES_JSONL: one request body a line (the JSON the azure-data-tables SDK sends for a create), to insert.
//   CHECK_JSONL: bodies of entities Azurite already stored through its HTTP API: each is built the same way and
//   compared with the stored document (all but the time stamps, ETag and LokiJS's own $loki/meta); a mismatch fails.
"use strict";
const fs = require("fs");
const path = require("path");
const util = require("util");

const [root, dbFile, collectionName, bodiesFile, checkFile] = process.argv.slice(2);
const azurite = path.join(root, "node_modules", "azurite");
const Loki = require(require.resolve("lokijs", { paths: [azurite] }));
const { NormalizedEntity } = require(path.join(azurite, "dist/src/table/entity/NormalizedEntity.js"));
const { truncatedISO8061Date } = require(path.join(azurite, "dist/src/common/utils/utils.js"));
const { newTableEntityEtag } = require(path.join(azurite, "dist/src/table/utils/utils.js"));

function* lines(file) {
  const buffer = fs.readFileSync(file);
  let start = 0;
  while (start < buffer.length) {
    let end = buffer.indexOf(10, start);
    if (end < 0) end = buffer.length;
    if (end > start) yield JSON.parse(buffer.toString("utf8", start, end));
    start = end + 1;
  }
}

// TableHandler.insertEntity + createPersistedEntity + LokiTableMetadataStore.insertTableEntity, without the request.
function persisted(body, when) {
  delete body["odata.etag"];
  const modTime = truncatedISO8061Date(when, true, true);
  const entity = { PartitionKey: body.PartitionKey, RowKey: body.RowKey, properties: body,
                   lastModifiedTime: modTime, eTag: newTableEntityEtag(modTime) };
  new NormalizedEntity(entity).normalize();
  entity.properties.Timestamp = entity.lastModifiedTime;
  entity.properties["Timestamp@odata.type"] = "Edm.DateTime";
  return entity;
}

function comparable(doc) {
  const { Timestamp, ...properties } = doc.properties;
  return { PartitionKey: doc.PartitionKey, RowKey: doc.RowKey, properties, keys: Object.keys(doc.properties) };
}

// The options Azurite gives its table LokiJS database (LokiTableMetadataStore's constructor).
const db = new Loki(dbFile, { persistenceMethod: "fs", autosave: true, autosaveInterval: 5000 });
db.loadDatabase({}, (error) => {
  if (error) throw error;
  const collection = db.getCollection(collectionName);
  if (collection === null) throw new Error(`no collection ${collectionName} in ${dbFile}`);
  const key = (doc) => `${doc.PartitionKey}\u0000${doc.RowKey}`;
  const stored = new Map(collection.data.map((doc) => [key(doc), doc]));
  let checked = 0;
  if (checkFile) {
    for (const body of lines(checkFile)) {
      const doc = stored.get(key(body));
      const mine = persisted(body, new Date());
      if (!doc) throw new Error(`not stored by Azurite: ${key(body)}`);
      if (!util.isDeepStrictEqual(comparable(mine), comparable(doc))) {
        throw new Error(`differs from Azurite's own document:\n${JSON.stringify(comparable(mine))}\n` +
                        `${JSON.stringify(comparable(doc))}`);
      }
      checked += 1;
    }
  }
  // Without adaptive indices an insert only marks the binary indices dirty (no splice per row); they are then rebuilt
  // once by LokiJS itself and the collection is left as Azurite made it (adaptive).
  const adaptive = collection.adaptiveBinaryIndices;
  collection.adaptiveBinaryIndices = false;
  let added = 0;
  const when = new Date();
  for (const body of lines(bodiesFile)) {
    if (stored.has(key(body))) throw new Error(`already stored: ${key(body)}`);
    stored.set(key(body), true);
    collection.insert(persisted(body, new Date(when.getTime() + Math.floor(added / 100))));
    added += 1;
  }
  collection.ensureAllIndexes(true);
  collection.adaptiveBinaryIndices = adaptive;
  db.saveDatabase((saveError) => {
    if (saveError) throw saveError;
    db.close(() => {
      console.log(JSON.stringify({ added, checked, documents: collection.data.length,
                                   bytes: fs.statSync(dbFile).size }));
    });
  });
});
