// Allure 3 configuration of the release report. Build the report with
// `python -m support.build_report`: it sets the REPORT_* variables below and adds the
// requirement coverage table; `npx allure generate allure-results` works too, without the table.
import { defineConfig } from "allure";

const env = process.env;

export default defineConfig({
  name: "Release review: secure real-time chat backend",
  output: env.REPORT_OUTPUT ?? "./allure-report",
  // One line per build: the History tab of each scenario and the trend charts read it.
  historyPath: env.REPORT_HISTORY ?? "./allure-history.jsonl",
  // The requirement coverage table and the isolation coverage by operation, shown under
  // "Global Attachments" on the home page.
  // META-02's evidence: the planted defects by area, when the planted-defect tests have run.
  globalAttachments: [env.REPORT_COVERAGE, env.REPORT_ISOLATION, env.REPORT_PLANTED].filter(Boolean),
  // Noise for a product owner: the requirement and area are already labels of their own.
  hideLabels: ["framework", "language", "tag"],
  categories: [
    { name: "Isolation broken: a user received another user's data",
      matchers: { statuses: ["failed", "broken"], message: /isolation broken/i } },
    { name: "Product errors", matchers: { statuses: ["failed"] } },
    { name: "The suite could not check (set-up, target or configuration)", matchers: { statuses: ["broken"] } },
  ],
  plugins: {
    awesome: {
      options: {
        reportName: "Release review: secure real-time chat backend",
        singleFile: true,
        reportLanguage: "en",
        // area (epic) -> requirement (feature) -> scenario
        groupBy: ["epic", "feature"],
      },
    },
  },
});
