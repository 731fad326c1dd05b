// Parses vCards with Mozilla's ical.js (what Thunderbird's address book uses), for tests/test_vcard_clients.py.
// stdin: a JSON array of vCard texts; stdout: a JSON array with, per text, {jcard} or {error}.
import ICAL from "ical.js";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((text) => {
  try {
    return { jcard: ICAL.parse(text) };
  } catch (error) {
    return { error: String(error) };
  }
});
process.stdout.write(JSON.stringify(results));
